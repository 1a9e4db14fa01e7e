"""A writer that takes the storage area's write lock and never lets go.

wlmscpfs blocks every query forever. wlmd with ``--lock-timeout`` answers within
the timeout with 0xA700 and an Error Comment, logs which process holds the lock,
and serves normally again once the writer is gone. Without the option it waits,
as wlmscpfs does, and answers when the lock is released.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"
OUT_OF_RESOURCES = 0xA700

#: Holds an fcntl write lock on argv[1] until stdin closes; says "locked" when it has it.
HOLDER = (
    "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
    "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()"
)


@pytest.fixture
def area(tmp_path: Path) -> Path:
    return make_area(tmp_path / "root", AREA, {"a.wl": complete_entry(PatientID="A")})


@pytest.fixture
def writer(area: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(area / "lockfile")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)


def release(writer: subprocess.Popen[str]) -> None:
    assert writer.stdin is not None
    writer.stdin.close()
    writer.wait(timeout=10)


def test_stuck_writer_gets_a700_within_the_timeout_and_is_named(
    area: Path, writer: subprocess.Popen[str]
) -> None:
    with servers.wlmd(area.parent, ["--lock-timeout", "1"]) as server:
        started = time.monotonic()
        result = findscu(server.port, aec=AREA, keys=["PatientID"], timeout=20)
        elapsed = time.monotonic() - started
        assert result.final_status == OUT_OF_RESOURCES, result.describe()
        assert result.final is not None
        assert "locked by a writer" in result.output
        assert 1.0 <= elapsed < 8.0
        (line,) = [line for line in server.log().splitlines() if "0xA700" in line]
        # the holder's pid and command line, for the operator
        assert f"write-locked by pid {writer.pid} ({sys.executable} -c import fcntl" in line
        release(writer)
        result = findscu(server.port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000 and len(result.datasets) == 1


def test_without_timeout_the_query_waits_for_the_writer(
    area: Path, writer: subprocess.Popen[str]
) -> None:
    with servers.wlmd(area.parent) as server:
        results: list = []
        thread = threading.Thread(
            target=lambda: results.append(
                findscu(server.port, aec=AREA, keys=["PatientID"], timeout=30)
            )
        )
        thread.start()
        thread.join(2.0)
        assert thread.is_alive(), "the query did not wait for the writer's lock"
        release(writer)
        thread.join(30)
        assert results and results[0].final_status == 0x0000, results
        assert len(results[0].datasets) == 1
