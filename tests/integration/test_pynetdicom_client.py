"""Happy-path checks with pynetdicom as the SCU.

pynetdicom 3.0.4 as a client can miss a fast C-FIND response and hang, so every
timeout is set and it is only used for a couple of happy paths; status and
rejection checks use DCMTK.
"""

from __future__ import annotations

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # generated names
    ModalityWorklistInformationFind,
    Verification,
)

from tests.helpers.servers import Server
from tests.helpers.worklists import query

TIMEOUT = 10


def _ae() -> AE:
    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = TIMEOUT
    ae.dimse_timeout = TIMEOUT
    ae.network_timeout = TIMEOUT
    ae.connection_timeout = TIMEOUT
    ae.add_requested_context(Verification)
    ae.add_requested_context(ModalityWorklistInformationFind)
    return ae


def test_pynetdicom_echo(wlmd_server: Server) -> None:
    assoc = _ae().associate("127.0.0.1", wlmd_server.port, ae_title="WLMD")
    assert assoc.is_established
    try:
        status = assoc.send_c_echo()
        assert status.Status == 0x0000
    finally:
        assoc.release()


def test_pynetdicom_find(wlmd_server: Server) -> None:
    assoc = _ae().associate("127.0.0.1", wlmd_server.port, ae_title="WLMD")
    assert assoc.is_established
    identifiers: list[Dataset] = []
    statuses: list[int] = []
    try:
        q = query(PatientID="IA4", PatientName=None, sps={"Modality": None})
        for n, (status, identifier) in enumerate(
            assoc.send_c_find(q, ModalityWorklistInformationFind)
        ):
            assert n < 10, "too many responses"
            assert status, "no status: the response timed out or the association died"
            statuses.append(int(status.Status))
            if identifier is not None and status.Status in (0xFF00, 0xFF01):
                identifiers.append(identifier)
    finally:
        assoc.release()
    assert statuses[-1] == 0x0000, statuses
    assert [str(ds.PatientName) for ds in identifiers] == ["DELTA^FOUR"]
    assert identifiers[0].ScheduledProcedureStepSequence[0].Modality == "MR"


def test_pynetdicom_unknown_called_ae(wlmd_server: Server) -> None:
    assoc = _ae().associate("127.0.0.1", wlmd_server.port, ae_title="NOSUCHAREA")
    try:
        assert assoc.is_rejected
    finally:
        if assoc.is_established:
            assoc.release()
