"""HL7 over MLLP from the test side: a real TCP client, ACK fields, the fixture messages."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from wlmd.hl7 import mllp

DATA = Path(__file__).resolve().parents[1] / "data" / "hl7"
TIMEOUT = 10.0


def wait_listening(port: int, timeout: float = TIMEOUT) -> None:
    """Until the HL7 port accepts: wlmd's readiness is its DICOM port, which listens
    before the supervisor's preload binds the HL7 one (bounded, with a growing wait)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1.0).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def read_acks(conn: socket.socket, replies: int = 1) -> list[bytes]:
    """Read ``replies`` framed answers from ``conn`` (fewer when it closes first)."""
    decoder = mllp.Decoder()
    answers: list[bytes] = []
    while len(answers) < replies:
        data = conn.recv(65536)
        events = decoder.feed(data) if data else decoder.close()
        answers += [e.payload for e in events if isinstance(e, mllp.Frame)]
        if not data:
            break
    return answers


def exchange(port: int, *chunks: bytes, replies: int = 1) -> list[bytes]:
    """Send ``chunks`` as they are, read ``replies`` framed answers (or until close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        for chunk in chunks:
            conn.sendall(chunk)
        return read_acks(conn, replies)


def msa(ack: bytes) -> list[str]:
    """The MSA segment's fields (MSA-1 at index 1)."""
    line = next(s for s in ack.split(b"\r") if s.startswith(b"MSA"))
    return line.decode("latin-1").split("|")


def fixture(name: str) -> bytes:
    return (DATA / name).read_bytes()


def entries(area: Path) -> list[str]:
    return sorted(p.name for p in area.glob("*.wl"))
