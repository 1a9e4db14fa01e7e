"""HL7 repeats across a wlmd restart: the same message again gives the same ACK and the same files.

A RIS resends a message whose ACK it did not get; when wlmd restarted in
between, the resend must neither duplicate an entry, nor undo a later XO,
nor bring back a cancelled order, nor be refused (issue 15: "repeated
messages are idempotent (MSH-10 and the order identity)").
"""

from __future__ import annotations

from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.hl7 import entries, exchange, fixture, msa, wait_listening
from tests.helpers.worklists import make_area, query
from wlmd.hl7 import mllp

OPTIONS = ["-v", "--hl7-station-default", "CR=CR01,US=US01"]


def contents(area: Path) -> dict[str, Dataset]:
    """Each entry's data set (the file meta has a fresh instance UID per write: left out)."""
    return {p.name: dcmread(p) for p in sorted(area.glob("*.wl"))}


def order(accession: str, control_id: str, control: str = "NW", modality: str = "CR") -> bytes:
    return (
        fixture("orm-medora-ascii-lf.hl7")
        .replace(b"MA77001", accession.encode())
        .replace(b"MED00042", control_id.encode())
        .replace(b"ORC|NW", f"ORC|{control}".encode())
        .replace(b"|CR", f"|{modality}".encode())
    )


def test_messages_resent_after_a_restart_change_nothing(
    tmp_path: Path, wlmd_available: None
) -> None:
    area = make_area(tmp_path, "WLMD", {})
    hl7_port = servers.free_port()
    options = [*OPTIONS, "--hl7-port", str(hl7_port)]
    kept_nw = order("RST0001", "RST-1")
    kept_xo = order("RST0001", "RST-2", "XO", "US")
    gone_nw = order("RST0002", "RST-3")
    gone_ca = order("RST0002", "RST-4", "CA")
    sent = [kept_nw, kept_xo, gone_nw, gone_ca]
    with servers.wlmd(tmp_path, options) as running:
        wait_listening(hl7_port)
        first = [exchange(hl7_port, mllp.frame(m))[0] for m in sent]
        assert [msa(a)[1] for a in first] == ["AA"] * 4, running.describe()
        before = contents(area)
    assert len(before) == 1
    (entry,) = before.values()
    assert entry.ScheduledProcedureStepSequence[0].Modality == "US"

    with servers.wlmd(tmp_path, options) as running:
        wait_listening(hl7_port)
        # Each resent alone, the files checked after each: the NW must not undo the XO,
        # the NW of the cancelled order must not bring it back.
        for message, ack in zip(sent, first, strict=True):
            (resent,) = exchange(hl7_port, mllp.frame(message))
            assert msa(resent)[1] == "AA", resent
            assert contents(area) == before, f"after resending {msa(ack)[2]}"
            assert resent == ack, "the remembered ACK, byte for byte"
        result = findscu(
            running.port,
            query(AccessionNumber=None, sps=dict(Modality=None, ScheduledStationAETitle=None)),
            aec="WLMD",
        )
        assert result.final_status == 0, result.describe()
        (ds,) = result.datasets
        assert ds.AccessionNumber == "RST0001"
        assert ds.ScheduledProcedureStepSequence[0].Modality == "US"
        # A new cancel (new control ID) of the order already removed: AA, not a NAK.
        (ack,) = exchange(hl7_port, mllp.frame(order("RST0002", "RST-5", "CA")))
        assert msa(ack)[1] == "AA" and "already removed" in msa(ack)[3]
        assert "(repeated: same ACK)" in running.log()
    assert contents(area) == before


def test_the_remembered_acks_survive_a_torn_last_line(tmp_path: Path, wlmd_available: None) -> None:
    area = make_area(tmp_path, "WLMD", {})
    hl7_port = servers.free_port()
    options = [*OPTIONS, "--hl7-port", str(hl7_port)]
    nw = order("TORN001", "TORN-1")
    ca = order("TORN001", "TORN-2", "CA")
    with servers.wlmd(tmp_path, options):
        wait_listening(hl7_port)
        first = [exchange(hl7_port, mllp.frame(m))[0] for m in (nw, ca)]
    journal = area / ".hl7-acks"
    journal.write_bytes(journal.read_bytes() + b'{"sender":"MEDORA","fac')
    with servers.wlmd(tmp_path, options) as running:
        wait_listening(hl7_port)
        again = [exchange(hl7_port, mllp.frame(m))[0] for m in (nw, ca)]
        assert again == first
        assert entries(area) == []
        assert "1 unreadable line(s) skipped" in running.log()
