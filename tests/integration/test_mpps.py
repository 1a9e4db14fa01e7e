"""The MPPS SCP over TCP, driven as a modality drives it (pynetdicom SCU, IHE RAD-6/RAD-7)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from tests.helpers import servers
from tests.helpers.mpps import completed, in_progress
from tests.helpers.worklists import complete_entry, make_area

TIMEOUT = 10


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, wlmd_available: None
) -> Iterator[servers.Server]:
    root = tmp_path_factory.mktemp("mpps-data")
    make_area(root, "WLMD", {"a.wl": complete_entry(PatientID="MWL1")})  # type: ignore[arg-type]
    state = tmp_path_factory.mktemp("mpps-state") / "wlmd.db"
    options = ["-v", "--mpps-ae-title", "WLMD", "--state-store", str(state)]
    with servers.wlmd(root, options) as running:
        yield running


def modality(port: int, called: str = "WLMD") -> Association:
    ae = AE(ae_title="CT01")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, "MPPS association not established"
    return assoc


def test_in_progress_then_completed_then_no_more(server: servers.Server) -> None:
    uid = "1.2.826.0.1.3680043.8.498.100"
    assoc = modality(server.port)
    try:
        status, created = assoc.send_n_create(
            in_progress("1.2.826.0.1.3680043.8.498.101", "SPS42"),
            ModalityPerformedProcedureStep,
            uid,
        )
        assert status.Status == 0x0000 and created is not None
        assert created.PerformedProcedureStepStatus == "IN PROGRESS"
        status, _ = assoc.send_n_create(in_progress(), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0111, "the same instance twice is a duplicate"
        status, _ = assoc.send_n_set(completed(end=False), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0121, "COMPLETED needs end date and time with values"
        status, done = assoc.send_n_set(completed(), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0000 and done.PerformedProcedureStepStatus == "COMPLETED"
        status, _ = assoc.send_n_set(completed("DISCONTINUED"), ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0110
        assert int(status.ErrorID) == 0xA710
        assert "may no longer be updated" in str(status.ErrorComment)
    finally:
        assoc.release()
    log = server.log()
    assert re.search(
        rf"MPPS N-CREATE CT01 -> WLMD from 127\.0\.0\.1:\d+: {re.escape(uid)} IN PROGRESS "
        r"\(study 1\.2\.826\.0\.1\.3680043\.8\.498\.101, SPS SPS42\), status 0x0000",
        log,
    ), log
    assert "Doe^Jane" not in log and "MPPS1" not in log, "no patient data at info level"


@pytest.mark.parametrize(
    ("change", "status"),
    [("SCHEDULED", 0x0106), ("", 0x0121)],
)
def test_n_create_must_be_in_progress(server: servers.Server, change: str, status: int) -> None:
    ds = in_progress()
    ds.PerformedProcedureStepStatus = change
    assoc = modality(server.port)
    try:
        got, _ = assoc.send_n_create(ds, ModalityPerformedProcedureStep, "1.2.3.99." + str(status))
        assert got.Status == status
    finally:
        assoc.release()


def test_an_unknown_instance_and_a_uid_the_scp_assigns(server: servers.Server) -> None:
    assoc = modality(server.port)
    try:
        status, _ = assoc.send_n_set(completed(), ModalityPerformedProcedureStep, "2.25.404")
        assert status.Status == 0x0112
        status, created = assoc.send_n_create(in_progress(), ModalityPerformedProcedureStep)
        assert status.Status == 0x0000 and created is not None and created.SOPInstanceUID
    finally:
        assoc.release()


def test_an_ae_title_without_mpps_refuses_its_context(
    server: servers.Server, tmp_path: Path
) -> None:
    ae = AE(ae_title="CT01")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(ModalityPerformedProcedureStep)
    ae.add_requested_context("1.2.840.10008.1.1")
    root = tmp_path / "data"
    make_area(root, "OTHER", {"a.wl": complete_entry()})  # type: ignore[arg-type]
    with servers.wlmd(
        root, ["--mpps-ae-title", "WLMD", "--state-store", str(tmp_path / "s.db")]
    ) as other:
        assoc = ae.associate("127.0.0.1", other.port, ae_title="OTHER")
        try:
            assert assoc.is_established
            accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
            assert accepted == {"1.2.840.10008.1.1"}
        finally:
            assoc.release()


def test_a_modification_with_patient_attributes_is_applied_without_them(
    server: servers.Server,
) -> None:
    uid = "1.2.826.0.1.3680043.8.498.200"
    assoc = modality(server.port)
    try:
        assoc.send_n_create(in_progress(), ModalityPerformedProcedureStep, uid)
        change = completed()
        change.PatientName = "Changed^Name"
        status, done = assoc.send_n_set(change, ModalityPerformedProcedureStep, uid)
        assert status.Status == 0x0000 and done.PatientName == "Doe^Jane"
    finally:
        assoc.release()
    assert "ignored (0010,0010) PatientName" in server.log()
