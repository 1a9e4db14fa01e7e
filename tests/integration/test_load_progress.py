"""While a large worklist loads, wlmd keeps systemd's start timeout from running out.

A real wlmd on an area of a few thousand files, with ``$NOTIFY_SOCKET`` bound
by the test as systemd would: before ``READY=1`` it must send
``EXTEND_TIMEOUT_USEC`` (at the start of loading, then paced by time, see
tests/unit/process/test_progress_pacing.py) with ``STATUS=loading worklist: N of M
files``, counts that only grow and end at M. The datagrams themselves are
the readiness signal; every wait has a deadline.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
from pathlib import Path

from tests.helpers import servers
from tests.helpers.worklists import complete_entry, make_area, write_wl

AREA = "WLMD"
FILES = 3000
DEADLINE = 60.0
LOADING = re.compile(r"STATUS=loading worklist: (\d+) of (\d+) files")


def _env(notify_socket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(servers.REPO_ROOT), env.get("PYTHONPATH")])
    )
    env["NOTIFY_SOCKET"] = notify_socket
    return env


def big_area(root: Path, count: int) -> None:
    """``count`` worklist files: one written with pydicom, the rest copies of its bytes."""
    make_area(root, AREA, {})
    first = write_wl(root / AREA / "w00000.wl", complete_entry(PatientID="P0"))
    data = first.read_bytes()
    for n in range(1, count):
        (root / AREA / f"w{n:05d}.wl").write_bytes(data)


def test_extend_timeout_and_counts_come_before_ready(tmp_path: Path) -> None:
    data = tmp_path / "worklists"
    big_area(data, FILES)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    received: list[str] = []
    argv = servers.wlmd_command([], data, servers.free_port())
    with open(tmp_path / "wlmd.log", "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_env(str(tmp_path / "notify.sock")),
            start_new_session=True,
        )
    servers._register(proc)
    try:
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and not any(
            "READY=1" in m.splitlines() for m in received
        ):
            assert proc.poll() is None, (tmp_path / "wlmd.log").read_text()
            sock.settimeout(min(0.5, max(0.01, deadline - time.monotonic())))
            try:
                received.append(sock.recv(4096).decode())
            except TimeoutError:
                continue
    finally:
        servers.stop(proc)
        sock.close()
    ready = [i for i, m in enumerate(received) if "READY=1" in m.splitlines()]
    assert ready, f"no READY=1 within {DEADLINE}s: {received}"
    before, after = received[: ready[0]], received[ready[0] :]

    # The first message is the start of loading, before any file was read.
    assert before, "READY=1 came without any loading progress"
    assert before[0].splitlines() == [
        "EXTEND_TIMEOUT_USEC=30000000",
        f"STATUS=loading worklist: 0 of {FILES} files",
    ]
    counts = []
    for message in before:
        lines = message.splitlines()
        assert "EXTEND_TIMEOUT_USEC=30000000" in lines, message
        (match,) = [m for m in map(LOADING.fullmatch, lines) if m]
        counts.append((int(match[1]), int(match[2])))
    assert {total for _, total in counts} == {FILES}
    done = [n for n, _ in counts]
    assert done == sorted(done) and done[-1] == FILES, counts
    # READY=1 brings the usual status; loading messages stop.
    assert any(line.startswith("STATUS=listening on 127.0.0.1:") for line in after[0].splitlines())
    assert not any("EXTEND_TIMEOUT_USEC" in message for message in after)
