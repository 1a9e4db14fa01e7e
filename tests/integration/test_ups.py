"""The UPS SCP over TCP: workflows with pynetdicom (final UIDs) and as dcmups sends them (trial).

A real wlmd offers UPS on called AE titles UPS and BOTH (BOTH also names a
storage area) with its state in SQLite; PostgreSQL cases run two wlmd nodes
on one database. Statuses are PS3.4 CC.2's; every client has timeouts.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import (
    UnifiedProcedureStepPull,
    UnifiedProcedureStepPush,
    UnifiedProcedureStepQuery,
    UnifiedProcedureStepWatch,
)

from tests.helpers import servers
from tests.helpers.postgres import Cluster
from tests.helpers.procs import wait_for
from tests.helpers.ups import performed, scheduled
from tests.helpers.upsclient import TRIAL_PULL, TRIAL_PUSH, TRIAL_WATCH, DcmupsLike
from tests.helpers.worklists import complete_entry, make_area

TIMEOUT = 10


def ups_options(location: str) -> list[str]:
    return ["-v", "--ups-ae-title", "UPS,BOTH", "--state-store", location]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> Path:
    root = tmp_path_factory.mktemp("ups-data")
    make_area(root, "BOTH", {"a.wl": complete_entry(PatientID="MWL1")})  # type: ignore[arg-type]
    make_area(root, "WLMD", {"b.wl": complete_entry(PatientID="MWL2")})  # type: ignore[arg-type]
    return root


@pytest.fixture(scope="module")
def server(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.Server]:
    state = tmp_path_factory.mktemp("ups-state") / "wlmd.db"
    with servers.wlmd(data_root, ups_options(str(state))) as running:
        yield running


def scu(port: int, called: str = "UPS", calling: str = "PERFORMER") -> Association:
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    for cls in (
        UnifiedProcedureStepPush,
        UnifiedProcedureStepPull,
        UnifiedProcedureStepWatch,
        UnifiedProcedureStepQuery,
    ):
        ae.add_requested_context(cls)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, "UPS association not established"
    return assoc


def create(assoc: Association, patient_id: str) -> str:
    """N-CREATE without an instance UID; the one the SCP assigned (from the attribute list)."""
    status, created = assoc.send_n_create(scheduled(PatientID=patient_id), UnifiedProcedureStepPush)
    assert status.Status in (0x0000, 0xB300), f"N-CREATE: 0x{status.Status:04X}"
    assert created is not None and created.SOPInstanceUID, "the SCP assigns the instance UID"
    return str(created.SOPInstanceUID)


def claim(tuid: str, state: str = "IN PROGRESS") -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = state
    ds.TransactionUID = tuid
    return ds


def test_a_step_from_creation_to_completion_with_the_final_uids(server: servers.Server) -> None:
    assoc = scu(server.port)
    try:
        uid = create(assoc, "FLOW1")

        query = Dataset()
        query.PatientID = "FLOW1"
        query.ProcedureStepState = ""
        query.SOPInstanceUID = ""
        found = [i for s, i in assoc.send_c_find(query, UnifiedProcedureStepQuery) if i]
        assert [(str(i.SOPInstanceUID), i.ProcedureStepState) for i in found] == [
            (uid, "SCHEDULED")
        ]

        tuid = "2.25.123456789"
        status, _ = assoc.send_n_action(claim(tuid), 1, UnifiedProcedureStepPull, uid)
        assert status.Status == 0x0000
        status, _ = assoc.send_n_action(claim("2.25.999"), 1, UnifiedProcedureStepPull, uid)
        assert status.Status == 0xC302, "a second claimer is told it is already in progress"

        progress = Dataset()
        info = Dataset()
        info.ProcedureStepProgress = "50"
        progress.ProcedureStepProgressInformationSequence = [info]
        status, _ = assoc.send_n_set(progress, UnifiedProcedureStepPull, uid)
        assert status.Status == 0xC301, "N-SET of an IN PROGRESS step needs its Transaction UID"
        progress.TransactionUID = tuid
        status, _ = assoc.send_n_set(progress, UnifiedProcedureStepPull, uid)
        assert status.Status == 0x0000

        status, got = assoc.send_n_get([], UnifiedProcedureStepPush, uid)
        assert status.Status == 0x0000 and got is not None
        assert got.ProcedureStepState == "IN PROGRESS" and "TransactionUID" not in got
        status, got = assoc.send_n_get([0x00741000], UnifiedProcedureStepPush, uid)
        assert status.Status == 0x0000 and got is not None, "one attribute: a single AT value"
        assert [e.keyword for e in got] == ["ProcedureStepState"]

        done = claim(tuid, "COMPLETED")
        status, _ = assoc.send_n_action(done, 1, UnifiedProcedureStepPull, uid)
        assert status.Status == 0xC304, "COMPLETED needs the performed procedure sequence"
        finish = performed(Dataset())
        finish.TransactionUID = tuid
        status, _ = assoc.send_n_set(finish, UnifiedProcedureStepPull, uid)
        assert status.Status == 0x0000
        status, _ = assoc.send_n_action(done, 1, UnifiedProcedureStepPull, uid)
        assert status.Status == 0x0000
        status, _ = assoc.send_n_set(progress, UnifiedProcedureStepPull, uid)
        assert status.Status == 0xC300, "a final step may no longer be updated"
    finally:
        assoc.release()
    log = server.log()
    assert re.search(rf"UPS N-ACTION change state PERFORMER -> UPS from 127\.0\.0\.1:\d+: "
                     rf"{re.escape(uid)}, status 0xC302", log)  # fmt: skip
    assert "FLOW1" not in log, "no patient data at info level"


def test_dcmups_trial_push_uid_on_every_context(server: servers.Server) -> None:
    client = DcmupsLike(server.port, (TRIAL_PUSH, TRIAL_PULL, TRIAL_WATCH))
    try:
        assert set(client.accepted) >= {TRIAL_PUSH, TRIAL_PULL, TRIAL_WATCH}
        created = client.request(
            "N_CREATE",
            TRIAL_PUSH,
            scheduled(PatientID="TRIAL1"),
            AffectedSOPClassUID=TRIAL_PUSH,
            AffectedSOPInstanceUID="",  # present but empty, as dcmups create without -iuid
        )
        assert created.status in (0x0000, 0xB300)
        uid = str(created.primitive.AffectedSOPInstanceUID)
        assert uid, "the assigned UID is returned"

        query = Dataset()
        query.PatientID = "TRIAL1"
        query.ProcedureStepState = ""
        query.AccessionNumber = ""  # a key UPS does not define, as dcmups's ~37 empty keys
        found = client.request(
            "C_FIND", TRIAL_PULL, query, AffectedSOPClassUID=TRIAL_PULL, Priority=0
        )
        assert found.status == 0x0000
        assert [str(d.ProcedureStepState) for d in client.pending] == ["SCHEDULED"]

        claimed = client.request(
            "N_ACTION",
            TRIAL_PULL,  # the Pull context, the Push UID in the command
            claim("2.25.42"),
            RequestedSOPClassUID=TRIAL_PUSH,
            RequestedSOPInstanceUID=uid,
            ActionTypeID=1,
        )
        assert claimed.status == 0x0000
        assert int(claimed.primitive.ActionTypeID) == 1

        subscription = Dataset()
        subscription.add_new(0x00741234, "AE", "NOT_LISTED")  # Receiving AE
        subscription.add_new(0x00741230, "CS", "TRUE")  # Deletion Lock, as dcmups sends it
        subscribed = client.request(
            "N_ACTION",
            TRIAL_WATCH,
            subscription,
            RequestedSOPClassUID=TRIAL_PUSH,
            RequestedSOPInstanceUID=uid,
            ActionTypeID=3,
        )
        assert subscribed.status == 0xC308, "a Receiving AE without an address is unknown"

        unknown = client.request(
            "N_ACTION",
            TRIAL_PULL,
            claim("2.25.42"),
            RequestedSOPClassUID=TRIAL_PUSH,
            RequestedSOPInstanceUID=uid,
            ActionTypeID=9,
        )
        assert unknown.status == 0x0123  # no such action type
        not_ups = client.request(
            "N_GET",
            TRIAL_PULL,
            RequestedSOPClassUID="1.2.840.10008.5.1.4.31",
            RequestedSOPInstanceUID=uid,
        )
        assert not_ups.status == 0x0118  # the command's SOP class is not UPS
        missing = client.request(
            "N_GET", TRIAL_PULL, RequestedSOPClassUID=TRIAL_PUSH, RequestedSOPInstanceUID="2.25.1"
        )
        assert missing.status == 0xC307  # no such UPS instance
    finally:
        client.release()


def test_a_called_ae_title_offers_what_it_is_configured_for(
    server: servers.Server, dcmtk: dict[str, str]
) -> None:
    both = scu(server.port, called="BOTH")
    both.release()
    mwl = DcmupsLike(server.port, (TRIAL_PUSH, "1.2.840.10008.5.1.4.31"), called="UPS")
    try:
        assert TRIAL_PUSH in mwl.accepted and "1.2.840.10008.5.1.4.31" not in mwl.accepted
    finally:
        mwl.release()
    plain = DcmupsLike(server.port, (TRIAL_PUSH, "1.2.840.10008.5.1.4.31"), called="WLMD")
    try:
        assert "1.2.840.10008.5.1.4.31" in plain.accepted and TRIAL_PUSH not in plain.accepted
    finally:
        plain.release()
    for called, count in (("BOTH", 1), ("WLMD", 1)):
        out = subprocess.run(
            [dcmtk["findscu"], "-W", "-aec", called, "-k", "PatientID",
             "127.0.0.1", str(server.port)],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
        assert out.stderr.count("Find Response:") == count, out.stderr
    rejected = subprocess.run(
        [dcmtk["echoscu"], "-aec", "NOSUCH", "127.0.0.1", str(server.port)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert rejected.returncode != 0
    wait_for(lambda: "NOSUCH" in server.log(), "the rejection line", timeout=5)
    assert "offers no other service (unified procedure step: BOTH, UPS)" in server.log()


def test_what_was_acknowledged_survives_kill_9_of_everything(
    data_root: Path, tmp_path: Path
) -> None:
    location = str(tmp_path / "state" / "wlmd.db")
    (tmp_path / "state").mkdir()
    with servers.wlmd(data_root, ups_options(location)) as first:
        assoc = scu(first.port)
        uid = create(assoc, "KILL1")
        status, _ = assoc.send_n_action(claim("2.25.7"), 1, UnifiedProcedureStepPull, uid)
        assert status.Status == 0x0000
        assoc.abort()
        os.killpg(first.proc.pid, signal.SIGKILL)
        first.proc.wait(timeout=TIMEOUT)
    with servers.wlmd(data_root, ups_options(location)) as second:
        assoc = scu(second.port)
        try:
            status, got = assoc.send_n_get([], UnifiedProcedureStepPush, uid)
            assert status.Status == 0x0000 and got.ProcedureStepState == "IN PROGRESS"
            status, _ = assoc.send_n_action(claim("2.25.8"), 1, UnifiedProcedureStepPull, uid)
            assert status.Status == 0xC302
        finally:
            assoc.release()


def test_two_nodes_on_one_postgresql_database_are_one_scp(
    data_root: Path, pg_cluster: Cluster
) -> None:
    location = pg_cluster.database()
    with (
        servers.wlmd(data_root, ups_options(location)) as node_a,
        servers.wlmd(data_root, ups_options(location)) as node_b,
    ):
        on_a, on_b = scu(node_a.port), scu(node_b.port)
        try:
            uid = create(on_a, "NODES")
            status, _ = on_b.send_n_action(claim("2.25.10"), 1, UnifiedProcedureStepPull, uid)
            assert status.Status == 0x0000, "a step created on A is claimed on B"
            status, _ = on_a.send_n_action(claim("2.25.11"), 1, UnifiedProcedureStepPull, uid)
            assert status.Status == 0xC302, "and a second claimer on A is refused"
        finally:
            on_a.release()
            on_b.release()


def test_an_unusable_state_store_stops_start_up_with_one_line(data_root: Path) -> None:
    result = servers.run_wlmd_cli(
        [*ups_options("/proc/nonexistent/wlmd.db"), "-dfp", str(data_root), "11999"]
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "cannot start" in line]
    assert len(lines) == 1 and "/proc/nonexistent" in lines[0], result.stderr
