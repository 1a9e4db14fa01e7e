"""Hostile network input against a live wlmd: mutated and random PDUs, malformed identifiers.

A seeded mutation fuzzer (deterministic: a failure names the seed and case to
replay). Each case opens a TCP connection to wlmd on 127.0.0.1, sends bytes —
a mutated A-ASSOCIATE-RQ, PDUs out of order, random garbage, or a valid
association followed by a C-FIND whose identifier is mutated (wrong lengths,
bad VRs, undefined lengths, deeply nested or huge sequences, odd character
sets) — half-closes and reads until wlmd closes the connection.

What must hold for every case: wlmd closes the connection by itself within a
bound (answer, A-ASSOCIATE-RJ, A-ABORT or close; never a hang), the
supervisor stays alive, no worker dies by a signal or with a traceback, and
after every batch a normal query still succeeds. ``WLMD_FUZZ_CASES`` raises
the number of cases (CI: 600), ``WLMD_FUZZ_SECONDS`` the time budget (240);
``WLMD_FUZZ_SEED`` picks another seed.
"""

from __future__ import annotations

import os
import random
import socket
import struct
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.rawclient import (
    Association,
    associate_rq,
    associated_socket,
    identifier,
    mwlclient,
)
from tests.helpers.worklists import complete_entry, make_area
from wlmd.association.wire import MAX_DIMSE_MESSAGE

AREA = "WLMD"
CASES = int(os.environ.get("WLMD_FUZZ_CASES", "600"))
SEED = int(os.environ.get("WLMD_FUZZ_SEED", "20261121"))
BATCH = 50
#: wlmd runs with -ta 2 -td 2: no case may keep a connection open much longer.
CLOSE_WITHIN = 8.0
#: Stop starting new batches after this many seconds (``WLMD_FUZZ_SECONDS`` for long runs).
TIME_BUDGET = float(os.environ.get("WLMD_FUZZ_SECONDS", "240"))


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(body)) + body


def _pdata(context: int, control: int, data: bytes) -> bytes:
    return _pdu(0x04, struct.pack(">LBB", len(data) + 2, context, control) + data)


def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        choice = rng.random()
        if not data:
            break
        at = rng.randrange(len(data))
        if choice < 0.35:
            data[at] ^= 1 << rng.randrange(8)
        elif choice < 0.5:
            data[at] = rng.choice((0x00, 0xFF, 0x7F, 0x80))
        elif choice < 0.6:
            del data[at:]
        elif choice < 0.7:
            data[at:at] = rng.randbytes(rng.randint(1, 64))
        elif choice < 0.8 and at + 4 <= len(data):
            data[at : at + 4] = struct.pack("<L", rng.choice((0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 65536)))
        elif choice < 0.9 and at + 4 <= len(data):
            data[at : at + 4] = struct.pack(">L", rng.choice((0, 3, 0xFFFFFFFF, 1 << 24)))
        else:
            start = rng.randrange(len(data))
            data[at:at] = data[start : start + rng.randint(1, 32)]
    return bytes(data)


def _nested_sequence(depth: int, undefined: bool) -> bytes:
    body = _element(0x00100020, b"P1")
    for _ in range(depth):
        if undefined:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + body
            item += struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
            seq = struct.pack("<HHL", 0x0040, 0x0100, 0xFFFFFFFF) + item
            body = seq + struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
        else:
            item = struct.pack("<HHL", 0xFFFE, 0xE000, len(body)) + body
            body = _element(0x00400100, item)
    return body


def _hostile_identifier(rng: random.Random) -> bytes:
    kind = rng.randrange(7)
    base = identifier({"PatientID": "P1"})
    if kind == 0:
        return _mutate(rng, base)
    if kind == 1:
        return _nested_sequence(rng.choice((2, 50, 300)), undefined=rng.random() < 0.5)
    if kind == 2:  # a huge sequence: many items
        item = struct.pack("<HHL", 0xFFFE, 0xE000, 0)
        return _element(0x00400100, item * rng.choice((1000, 20000)))
    if kind == 3:  # odd and wrong character sets, non-ASCII values
        charset = rng.choice([b"ISO_IR 192", b"ISO 2022 IR 87", b"GB18030", b"\\\\", b"XYZ"])
        return (
            _element(0x00080005, charset + b" " * (len(charset) % 2))
            + _element(0x00100010, rng.randbytes(rng.choice((2, 64, 4000))))
            + base[8:]
        )
    if kind == 4:  # element lengths that lie
        return _element(0x00100020, b"P1")[:4] + struct.pack("<L", rng.choice((3, 0xFFFF, 1 << 30)))
    if kind == 5:  # explicit-VR-looking bytes on an implicit VR context
        return struct.pack("<HH2sH", 0x0010, 0x0020, rng.choice((b"SQ", b"UN", b"ZZ")), 4) + b"P1  "
    return rng.randbytes(rng.randint(0, 2048))


def _case(rng: random.Random, port: int) -> Callable[[socket.socket], None]:
    """One case: what to send on a fresh connection (some open a real association first)."""
    kind = rng.randrange(6)
    if kind == 0:
        payload = _mutate(rng, associate_rq(AREA, "FUZZ", 16384))
        return lambda sock: sock.sendall(payload)
    if kind == 1:
        payload = rng.randbytes(rng.randint(1, 4096))
        return lambda sock: sock.sendall(payload)
    if kind == 2:  # valid PDUs in the wrong order / out of place
        pieces = [
            _pdu(0x05, bytes(4)),  # A-RELEASE-RQ
            _pdu(0x07, bytes(4)),  # A-ABORT
            _pdata(1, 0x03, b"\x00" * 8),  # P-DATA before any association
            _pdu(0x02, bytes(68)),  # an A-ASSOCIATE-AC sent to the acceptor
            _pdu(0x09, b""),  # no such PDU type
            struct.pack(">BBL", 0x01, 0, 0xFFFFFFF0),  # claims a 4 GB A-ASSOCIATE-RQ
        ]
        payload = b"".join(rng.sample(pieces, rng.randint(1, 3)))
        return lambda sock: sock.sendall(payload)
    # an established association, then something hostile inside it
    ident = _hostile_identifier(rng)
    find = mwlclient.find_rq(1, ident)
    tail = rng.choice([b"", _pdu(0x05, bytes(4)), _pdu(0x07, bytes(4)), _mutate(rng, find)])

    def after_association(sock: socket.socket) -> None:
        sock.sendall(associate_rq(AREA, "FUZZ", 16384))
        sock.settimeout(CLOSE_WITHIN)
        head = sock.recv(6)
        if len(head) == 6 and head[0] == 0x02:
            remaining = struct.unpack(">L", head[2:6])[0]
            while remaining > 0:
                chunk = sock.recv(min(remaining, 65536))
                if not chunk:
                    return
                remaining -= len(chunk)
            sock.sendall((find if kind != 5 else _mutate(rng, find)) + tail)

    return after_association


def _run_case(port: int, send: Callable[[socket.socket], None]) -> str:
    """Send, half-close, read until wlmd closes; the outcome, or "hang"."""
    deadline = time.monotonic() + CLOSE_WITHIN
    with socket.create_connection(("127.0.0.1", port), timeout=CLOSE_WITHIN) as sock:
        try:
            send(sock)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            return "closed while sending"
        first = b""
        while time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            except OSError:
                return "reset"
            if not chunk:
                return f"closed after PDU type {first[:1].hex() or '-'}"
            first = first or chunk
        return "hang"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    make_area(root, AREA, {f"e{n}.wl": complete_entry(PatientID=f"P{n}") for n in range(5)})
    return root


def test_hostile_network_input(data_root: Path) -> None:
    rng = random.Random(SEED)
    outcomes: dict[str, int] = {}
    started = time.monotonic()
    ran = 0
    with servers.wlmd(data_root, ["-ta", "2", "-td", "2", "--max-associations", "200"]) as server:
        for batch_start in range(0, CASES, BATCH):
            for case in range(batch_start, min(batch_start + BATCH, CASES)):
                send = _case(rng, server.port)
                outcome = _run_case(server.port, send)
                assert outcome != "hang", f"seed {SEED} case {case}: connection not closed"
                key = outcome.split(" after")[0]
                outcomes[key] = outcomes.get(key, 0) + 1
                ran += 1
            assert server.alive(), f"supervisor died (seed {SEED}, batch at {batch_start})"
            with Association.open("127.0.0.1", server.port, AREA, io_timeout=10) as assoc:
                result = assoc.find(identifier({}), deadline_s=10)
                assert (result.status, result.matches) == (0x0000, 5)
                assoc.release()
            if time.monotonic() - started > TIME_BUDGET:
                break
        result = findscu(server.port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000 and len(result.datasets) == 5
        log = server.log()
    assert ran >= min(CASES, 200), f"only {ran} cases ran within {TIME_BUDGET}s"
    problems = [
        line
        for line in log.splitlines()
        if "Traceback" in line or "killed by signal" in line or "exited with status" in line
    ]
    assert not problems, "\n".join(problems[:20])
    print(f"fuzz: {ran} cases, seed {SEED}, outcomes {outcomes}")


@pytest.mark.parametrize("after_association", [False, True])
def test_pdu_longer_than_the_limit_is_refused_before_it_is_read(
    data_root: Path, after_association: bool
) -> None:
    """A peer announcing (and sending) a 2 GB PDU is cut off; nothing of it is buffered."""
    with servers.wlmd(data_root, ["-ta", "5", "-td", "5", "-pdu", "16384"]) as server:
        if after_association:
            sock = associated_socket(server.port, AREA, "FUZZ")
        else:
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with sock:
            kind = 0x04 if after_association else 0x01
            sock.sendall(struct.pack(">BBL", kind, 0, 0x7FFFFFF0))
            _stream_until_closed(sock, bytes(65536))
        limit = 16384 if after_association else 65536
        _refused_and_still_serving(
            server, f"PDU of 2147483632 bytes refused (the limit is {limit}, see -pdu)"
        )


def _stream_until_closed(sock: socket.socket, chunk: bytes) -> None:
    """Send ``chunk`` again and again: wlmd must close the connection within 64 MB."""
    sent = 0
    with pytest.raises(OSError):  # the server closed the connection on us
        while sent < 256 * 1024 * 1024:
            sock.sendall(chunk)
            sent += len(chunk)
    assert sent < 64 * 1024 * 1024, f"{sent} bytes were accepted before the close"


def _refused_and_still_serving(server: servers.Server, message: str) -> None:
    deadline = time.monotonic() + 10
    while message not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert message in server.log()
    result = findscu(server.port, aec=AREA, keys=["PatientID"])
    assert result.final_status == 0x0000 and len(result.datasets) == 5


def test_endless_dimse_message_is_refused(data_root: Path) -> None:
    """P-DATA fragments of one data set that never ends: cut off at MAX_DIMSE_MESSAGE.

    Each PDU is within -pdu; without a bound on the whole message pynetdicom
    would keep every fragment (measured before the fix: 320 MB sent, 349 MB RSS).
    """
    with servers.wlmd(data_root, ["-ta", "5", "-td", "5", "-pdu", "16384"]) as server:
        with associated_socket(server.port, AREA, "FUZZ") as sock:
            command = mwlclient.find_rq(1, b"")[: -len(_pdata(1, 0x02, b""))]
            sock.sendall(command)
            # data fragments, never the last one
            _stream_until_closed(sock, _pdata(1, 0x00, bytes(16000)))
        _refused_and_still_serving(
            server, f"DIMSE message longer than {MAX_DIMSE_MESSAGE} bytes refused"
        )


def test_large_fragmented_identifier_is_still_answered(data_root: Path) -> None:
    """The bound is per message and generous: 300 KB in 19 fragments gets a DICOM answer."""
    items = struct.pack("<HHL", 0xFFFE, 0xE000, 0) * 37_500  # 300,000 bytes of empty items
    ident = identifier({"PatientID": "P1"}) + _element(0x00400100, items)
    assert len(ident) < MAX_DIMSE_MESSAGE
    with servers.wlmd(data_root, ["-ta", "5", "-td", "5", "-pdu", "16384"]) as server:
        with Association.open("127.0.0.1", server.port, AREA, io_timeout=10) as assoc:
            result = assoc.find(ident, deadline_s=10)
            # more than one SPS item: invalid for wlmscpfs's rules, answered 0xA900
            assert result.status == 0xA900, hex(result.status)
            assoc.release()
        assert "refused" not in server.log()
