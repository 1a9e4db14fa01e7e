"""HL7 intake throughput: N ORM^O01 NW orders over one MLLP connection, every ACK checked.

    PYTHONPATH=. python bench/hl7orders.py [N]      (default 1000; target: <= 20 s)

Starts a real wlmd (``--hl7-port``) on 127.0.0.1 in a temporary directory,
sends the orders one after another (a RIS waits for each ACK), checks each
ACK is AA for its own MSH-10, then checks the area holds N entries.
"""

from __future__ import annotations

import socket
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers import servers
from tests.helpers.worklists import make_area
from wlmd.hl7 import mllp

TEMPLATE = (
    "MSH|^~\\&|BENCHRIS|HOSP|WLMD|RAD|20261202080000||ORM^O01|B{n:06d}|P|2.3.1\r"
    "PID|||P{n:06d}^^^HOSP^MR||BENCH^PATIENT^{n}||19700101|F\r"
    "ORC|NW|PL{n:06d}|FI{n:06d}||SC||^^^20261203{hh:02d}{mm:02d}00^^R\r"
    "OBR|1|PL{n:06d}|FI{n:06d}|CTHEAD^CT Head^LOCAL||||||||||||||A{n:06d}|R{n:06d}|S{n:06d}||||CT\r"
)


def main(count: int) -> int:
    with tempfile.TemporaryDirectory(prefix="hl7-bench-") as tmp:
        area = make_area(Path(tmp), "WLMD", {})
        port = servers.free_port()
        with (
            servers.wlmd(tmp, ["--hl7-port", str(port), "--hl7-station-default", "CT=CT01"]),
            socket.create_connection(("127.0.0.1", port), timeout=30) as conn,
        ):
            decoder = mllp.Decoder()
            bad = 0
            started = time.monotonic()
            for n in range(count):
                text = TEMPLATE.format(n=n, hh=8 + n % 10, mm=n % 60)
                conn.sendall(mllp.frame(text.encode("ascii")))
                frames: list[bytes] = []
                while not frames:
                    data = conn.recv(65536)
                    if not data:
                        raise SystemExit(f"connection closed after {n} orders")
                    frames = [e.payload for e in decoder.feed(data) if isinstance(e, mllp.Frame)]
                msa = next(s for s in frames[0].split(b"\r") if s.startswith(b"MSA")).split(b"|")
                bad += msa[1:3] != [b"AA", f"B{n:06d}".encode()]
            elapsed = time.monotonic() - started
        written = len(list(area.glob("*.wl")))
    print(
        f"{count} orders in {elapsed:.2f} s ({count / elapsed:.0f}/s); "
        f"ACKs not AA for their MSH-10: {bad}; entries written: {written}"
    )
    return 0 if bad == 0 and written == count else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
