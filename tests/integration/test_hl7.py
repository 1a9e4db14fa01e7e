"""HL7 order intake over real TCP: MLLP frames in, ACKs out, entries seen by DCMTK findscu."""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.hl7 import TIMEOUT, entries, exchange, fixture, msa, wait_listening
from tests.helpers.worklists import make_area, query
from wlmd.hl7 import mllp


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, wlmd_available: None
) -> Iterator[tuple[servers.Server, int, Path]]:
    root = tmp_path_factory.mktemp("hl7-data")
    area = make_area(root, "WLMD", {})
    hl7_port = servers.free_port()
    options = [
        "-v",
        "--hl7-port",
        str(hl7_port),
        "--hl7-station-default",
        "CR=CR01,US=US01",
        "--hl7-max-size",
        "2000000",
    ]
    with servers.wlmd(root, options) as running:
        wait_listening(hl7_port)
        yield running, hl7_port, area


def patients(port: int, **keys: object) -> list[str]:
    result = findscu(
        port,
        query(
            PatientName=None,
            PatientID=None,
            AccessionNumber=None,
            sps=dict(ScheduledStationAETitle=None, Modality=None, ScheduledProcedureStepID=None),
        ),
        aec="WLMD",
        **keys,
    )  # type: ignore[arg-type]
    assert result.final_status == 0, result.describe()
    return sorted(
        f"{ds.PatientID}/{ds.AccessionNumber}/{ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID}"
        for ds in result.datasets
    )


def test_three_ris_styles_mapped_and_seen_by_findscu(
    server: tuple[servers.Server, int, Path],
) -> None:
    running, port, _ = server
    for name in ("orm-radis-latin1.hl7", "omi-orbis-utf8.hl7", "orm-medora-ascii-lf.hl7"):
        (ack,) = exchange(port, mllp.frame(fixture(name)))
        assert msa(ack)[1] == "AA", ack
    result = findscu(
        running.port,
        query(
            PatientName=None,
            PatientID="MRN55012",
            SpecificCharacterSet="ISO_IR 192",
            sps=dict(ScheduledProcedureStepID=None, ScheduledStationAETitle=None),
        ),
        aec="WLMD",
    )
    assert result.final_status == 0, result.describe()
    found = {
        ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepID: ds for ds in result.datasets
    }
    assert set(found) == {"SPS55010A", "SPS55010B"}, "one entry per IPC"
    assert str(found["SPS55010A"].PatientName) == "Østergård^Åse"
    result = findscu(
        running.port,
        query(
            PatientName=None,
            AccessionNumber="ACC1001",
            SpecificCharacterSet="ISO_IR 100",
            sps=dict(ScheduledStationAETitle=None),
        ),
        aec="WLMD",
    )
    (ds,) = result.datasets
    assert str(ds.PatientName) == "Müller-Lüdenscheidt^Hans^Peter^Dr."
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT01"
    result = findscu(
        running.port,
        query(
            AccessionNumber="MA77001",
            RequestedProcedureDescription=None,
            sps=dict(ScheduledStationAETitle=None),
        ),
        aec="WLMD",
    )
    (ds,) = result.datasets
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CR01", "station default"
    assert ds.RequestedProcedureDescription == "XR CHEST 2 VIEWS & LAT", "\\T\\ unescaped"
    log = running.log()
    assert re.search(
        r"HL7 ORM\^O01 RADIS000101 from 127\.0\.0\.1:\d+: order control NW, AA", log
    ), log
    assert "Lüdenscheidt" not in log and "PAT1001" not in log, "no patient data at info level"


def test_nw_xo_ca_sequence_and_repeats(server: tuple[servers.Server, int, Path]) -> None:
    running, port, area = server
    nw = (
        fixture("orm-medora-ascii-lf.hl7")
        .replace(b"MA77001", b"SEQ0001")
        .replace(b"MED00042", b"SEQ-1")
    )
    before = len(entries(area))
    (ack,) = exchange(port, mllp.frame(nw))
    assert msa(ack)[1] == "AA"
    (again,) = exchange(port, mllp.frame(nw))
    assert again == ack, "the same MSH-10: the same ACK"
    assert len(entries(area)) == before + 1
    resent = nw.replace(b"SEQ-1", b"SEQ-1b")
    (ack,) = exchange(port, mllp.frame(resent))
    assert msa(ack)[1] == "AA" and len(entries(area)) == before + 1, "a repeated NW replaces"
    xo = nw.replace(b"ORC|NW", b"ORC|XO").replace(b"SEQ-1", b"SEQ-2").replace(b"|CR", b"|US")
    (ack,) = exchange(port, mllp.frame(xo))
    assert msa(ack)[1] == "AA"
    result = findscu(
        running.port,
        query(AccessionNumber="SEQ0001", sps=dict(Modality=None, ScheduledStationAETitle=None)),
        aec="WLMD",
    )
    (ds,) = result.datasets
    assert ds.ScheduledProcedureStepSequence[0].Modality == "US"
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "US01"
    ca = nw.replace(b"ORC|NW", b"ORC|CA").replace(b"SEQ-1", b"SEQ-3")
    (ack,) = exchange(port, mllp.frame(ca))
    assert msa(ack)[1] == "AA" and len(entries(area)) == before
    result = findscu(running.port, query(AccessionNumber="SEQ0001"), aec="WLMD")
    assert result.datasets == []
    (ack,) = exchange(port, mllp.frame(ca.replace(b"SEQ-3", b"SEQ-4")))
    assert msa(ack)[1] == "AA" and "already removed" in msa(ack)[3]


def test_split_and_coalesced_frames(server: tuple[servers.Server, int, Path]) -> None:
    _, port, _ = server
    one = (
        fixture("orm-medora-ascii-lf.hl7")
        .replace(b"MA77001", b"SPLIT01")
        .replace(b"MED00042", b"SPLIT-1")
    )
    two = one.replace(b"SPLIT01", b"SPLIT02").replace(b"SPLIT-1", b"SPLIT-2")
    framed = mllp.frame(one)
    pieces = [b"noise", framed[:1], framed[1:30], framed[30:-1], framed[-1:] + mllp.frame(two)]
    acks = exchange(port, *pieces, replies=2)
    assert [msa(a)[1:3] for a in acks] == [["AA", "SPLIT-1"], ["AA", "SPLIT-2"]]


def test_message_without_end_block_is_not_applied(server: tuple[servers.Server, int, Path]) -> None:
    running, port, _ = server
    body = (
        fixture("orm-medora-ascii-lf.hl7")
        .replace(b"MA77001", b"NOEND01")
        .replace(b"MED00042", b"NOEND-1")
    )
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(mllp.START_BLOCK + body)
        conn.shutdown(socket.SHUT_WR)
        assert conn.recv(100) == b"", "no ACK for an unfinished message"
    result = findscu(running.port, query(AccessionNumber="NOEND01"), aec="WLMD")
    assert result.final_status == 0 and result.datasets == []
    assert "without end block" in running.log()


def test_large_message_and_oversized(server: tuple[servers.Server, int, Path]) -> None:
    _, port, _ = server
    base = (
        fixture("orm-medora-ascii-lf.hl7")
        .replace(b"MA77001", b"BIG0001")
        .replace(b"MED00042", b"BIG-1")
    )
    note = b"NTE|1||" + b"x" * 1_000_000 + b"\n"
    (ack,) = exchange(port, mllp.frame(base + note))
    assert msa(ack)[1] == "AA", "a 1 MB message is taken"
    huge = base.replace(b"BIG-1", b"BIG-2") + note + note
    (ack,) = exchange(port, mllp.frame(huge))
    assert msa(ack)[1] == "AR" and "larger than 2000000 bytes" in msa(ack)[3]


@pytest.mark.parametrize(
    ("change", "code", "where"),
    [
        ((b"|8859/1", b"|UNICODE UTF-8"), "AE", "not valid UTF-8"),  # Latin-1 bytes, UTF-8 declared
        ((b"|8859/1", b"|ISO IR87"), "AR", "MSH-18"),
        ((b"ORM^O01", b"ADT^A01"), "AR", "MSH-9"),
        ((b"|CT|||", b"|||||"), "AE", "OBR-24"),
        ((b"ORC|NW", b"ORC|ZZ"), "AE", "ORC-1"),
        ((b"|ACC1001|RP1001|SPS1001|", b"|||SPS1001|"), "AA", ""),  # ZDS-1 + OBR-20 identify it
        ((b"|ACC1001|RP1001|SPS1001|", b"||||"), "AE", "OBR-18"),  # nothing identifies it
    ],
)
def test_malformed_messages_are_refused_with_a_reason(
    server: tuple[servers.Server, int, Path], change: tuple[bytes, bytes], code: str, where: str
) -> None:
    _, port, area = server
    before = entries(area)
    message = fixture("orm-radis-latin1.hl7").replace(*change)
    tag = hashlib.sha256(b"".join(change)).hexdigest()[:8].encode()
    message = message.replace(b"RADIS000101", b"BAD-" + tag)
    (ack,) = exchange(port, mllp.frame(message))
    fields = msa(ack)
    assert fields[1] == code and where in fields[3], ack
    if code != "AA":
        assert b"ERR|" in ack
        assert entries(area) == before, "nothing written"
