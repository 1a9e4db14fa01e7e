"""wlmd alone over TCP, driven by DCMTK's findscu and echoscu."""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.dcmtk import ClientResult, echoscu, findscu, require_dcmtk
from tests.helpers.servers import Server
from tests.helpers.worklists import query

pytestmark = pytest.mark.dcmtk

SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
OUT_OF_RESOURCES = 0xA700
REJECTED_CALLED_AE = (
    "Result: Rejected Permanent, Source: Service User",
    "Reason: Called AE Title Not Recognized",
)


@pytest.fixture(autouse=True)
def _dcmtk() -> None:
    require_dcmtk("findscu", "echoscu")


def mwl_query(**keys: Any) -> Dataset:
    sps = {
        "ScheduledStationAETitle": None,
        "Modality": None,
        "ScheduledProcedureStepStartDate": None,
    }
    sps.update(keys.pop("sps", {}))  # type: ignore[arg-type]
    top: dict[str, Any] = {"PatientName": None, "PatientID": None}
    top.update(keys)
    return query(**top, sps=sps)


def patient_ids(result: ClientResult) -> list[str]:
    return sorted(str(ds.PatientID) for ds in result.datasets)


def test_echo(wlmd_server: Server) -> None:
    result = echoscu(wlmd_server.port, aec="WLMD")
    assert result.returncode == 0, result.describe()
    assert [r.status for r in result.responses] == [SUCCESS], result.describe()


def test_basic_query(wlmd_server: Server) -> None:
    result = findscu(wlmd_server.port, mwl_query(), aec="WLMD")
    assert result.returncode == 0, result.describe()
    assert patient_ids(result) == ["IA1", "IA2", "IA3", "IA4", "IA5"], result.describe()
    assert {r.status for r in result.pending} == {PENDING}
    assert result.final_status == SUCCESS


def test_query_matches(wlmd_server: Server) -> None:
    result = findscu(wlmd_server.port, mwl_query(sps={"Modality": "MR"}), aec="WLMD")
    assert patient_ids(result) == ["IA4"], result.describe()
    assert result.final_status == SUCCESS


@pytest.mark.parametrize("proposal", ["-xi", "-xe", "-xb", "-x="])
def test_transfer_syntaxes(wlmd_server: Server, proposal: str) -> None:
    result = findscu(wlmd_server.port, mwl_query(PatientID="IA3"), aec="WLMD", extra=[proposal])
    assert result.returncode == 0, result.describe()
    assert patient_ids(result) == ["IA3"], result.describe()
    assert str(result.datasets[0].PatientName) == "CHARLIE^THREE"
    assert result.final_status == SUCCESS


def test_deflated_transfer_syntax(start_wlmd: Callable[..., Server]) -> None:
    server = start_wlmd("+xd")
    result = findscu(server.port, mwl_query(PatientID="IA2"), aec="WLMD", extra=["-xd"])
    assert result.returncode == 0, result.describe()
    assert "Accepted Transfer Syntax: =DeflatedLittleEndianExplicit" in result.output, (
        result.describe()
    )
    assert patient_ids(result) == ["IA2"], result.describe()
    assert result.final_status == SUCCESS


def test_unknown_called_ae_rejected(wlmd_server: Server) -> None:
    find = findscu(wlmd_server.port, mwl_query(), aec="NOSUCHAREA")
    assert find.returncode != 0, find.describe()
    assert find.rejection == REJECTED_CALLED_AE, find.describe()
    assert not find.responses
    echo = echoscu(wlmd_server.port, aec="NOSUCHAREA")
    assert echo.returncode != 0, echo.describe()
    assert echo.rejection == REJECTED_CALLED_AE, echo.describe()


@pytest.mark.parametrize("aec", ["..", "WLMD/", "../WLMD", "."])
def test_path_like_called_ae_rejected(wlmd_server: Server, aec: str) -> None:
    result = findscu(wlmd_server.port, mwl_query(), aec=aec)
    assert result.rejection == REJECTED_CALLED_AE, result.describe()
    assert not result.datasets


def test_missing_lockfile(wlmd_server: Server) -> None:
    result = findscu(wlmd_server.port, mwl_query(), aec="NOLOCK")
    assert result.returncode == 0, result.describe()
    assert not result.datasets, result.describe()
    assert result.final_status == OUT_OF_RESOURCES, result.describe()
    assert result.final is not None and result.final.error_comment, (
        "wlmd should explain the 0xA700 in an ErrorComment\n" + result.describe()
    )


def test_limit_answers(start_wlmd: Callable[..., Server]) -> None:
    server = start_wlmd("--limit-answers", "2")
    result = findscu(server.port, mwl_query(), aec="WLMD")
    assert len(result.pending) == 2, result.describe()
    assert len(result.datasets) == 2
    assert result.final_status == CANCEL, result.describe()


def test_limit_answers_not_reached(start_wlmd: Callable[..., Server]) -> None:
    server = start_wlmd("--limit-answers", "2")
    result = findscu(server.port, mwl_query(PatientID="IA1"), aec="WLMD")
    assert patient_ids(result) == ["IA1"], result.describe()
    assert result.final_status == SUCCESS, result.describe()


def test_filter_issuer_aet(start_wlmd: Callable[..., Server]) -> None:
    server = start_wlmd("--filter-issuer-aet")
    no_station = query(PatientName=None, PatientID=None, sps={"Modality": None})
    mine = findscu(server.port, no_station, aec="WLMD", aet="FINDSCU")
    assert patient_ids(mine) == ["IA1", "IA2"], mine.describe()
    other = findscu(server.port, no_station, aec="WLMD", aet="OTHER")
    assert patient_ids(other) == ["IA3", "IA4"], other.describe()
    nobody = findscu(server.port, no_station, aec="WLMD", aet="NOBODY")
    assert patient_ids(nobody) == [], nobody.describe()
    assert nobody.final_status == SUCCESS


def test_filter_issuer_aet_explicit_station(start_wlmd: Callable[..., Server]) -> None:
    server = start_wlmd("--filter-issuer-aet")
    explicit = mwl_query(sps={"ScheduledStationAETitle": "THIRD"})
    result = findscu(server.port, explicit, aec="WLMD", aet="FINDSCU")
    assert patient_ids(result) == ["IA5"], result.describe()


def test_without_filter_issuer_aet_all_stations(wlmd_server: Server) -> None:
    no_station = query(PatientName=None, PatientID=None, sps={"Modality": None})
    result = findscu(wlmd_server.port, no_station, aec="WLMD", aet="OTHER")
    assert len(result.datasets) == 5, result.describe()


def test_cancel(start_wlmd: Callable[..., Server]) -> None:
    """findscu --cancel 1 sends C-CANCEL after the first response.

    ``--sleep-during 1`` makes wlmd pause between responses, so the cancel request is
    there before the second response would be sent: deterministic, costs ~1 s.
    """
    server = start_wlmd("--sleep-during", "1")
    result = findscu(server.port, mwl_query(), aec="WLMD", extra=["--cancel", "1"])
    assert result.returncode == 0, result.describe()
    assert 1 <= len(result.pending) < 5, result.describe()
    assert result.final_status == CANCEL, result.describe()


def test_single_process_mode(start_wlmd: Callable[..., Server]) -> None:
    server = start_wlmd("-s")
    for _ in range(3):  # several associations in a row on the same process
        result = findscu(server.port, mwl_query(PatientID="IA5"), aec="WLMD")
        assert patient_ids(result) == ["IA5"], result.describe()
    assert server.alive()


@pytest.mark.parametrize("options", [(), ("-s",)], ids=["fork", "single-process"])
def test_bare_connection_does_not_block(
    start_wlmd: Callable[..., Server], options: tuple[str, ...]
) -> None:
    """A TCP connect + close without any PDU (port scanner, health check) is harmless.

    wlmscpfs -s survives this; the next association must be served at once.
    """
    import socket

    server = start_wlmd(*options)
    for _ in range(2):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass
    result = echoscu(server.port, aec="WLMD", extra=["-ta", "5"])
    assert [r.status for r in result.responses] == [SUCCESS], result.describe()


def test_responses_larger_than_the_peers_max_pdu_are_fragmented(tmp_path: pathlib.Path) -> None:
    """wlmd writes pending responses itself: they must respect findscu's -pdu 4096."""
    from pydicom.dataset import Dataset

    from tests.helpers import servers
    from tests.helpers.worklists import complete_entry, make_area

    refs = []
    for n in range(120):  # ~ 8 KB of ReferencedStudySequence items
        ref = Dataset()
        ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
        ref.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.2.1125.{n}.{n * 7}"
        refs.append(ref)
    make_area(
        tmp_path, "BIG", {"big.wl": complete_entry(PatientID="BIG", ReferencedStudySequence=refs)}
    )
    q = mwl_query(PatientID="BIG")
    q.ReferencedStudySequence = []
    with servers.wlmd(tmp_path) as server:
        result = findscu(server.port, q, aec="BIG", extra=["--max-pdu", "4096"])
    assert result.final_status == SUCCESS, result.describe()
    assert patient_ids(result) == ["BIG"]
    assert len(result.datasets[0].ReferencedStudySequence) == 120
