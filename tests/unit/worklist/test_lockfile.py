"""The lockfile protocol (wlmd/worklist/lockfile.py): shared read locks, --lock-timeout,
the slow-wait warning naming the writer, and a busy lock at the supervisor's load."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.worklists import complete_entry, make_area
from wlmd.worklist import lockfile
from wlmd.worklist.area import StorageArea
from wlmd.worklist.lockfile import LockError
from wlmd.worklist.store import WorklistStore


def _names(area: StorageArea) -> list[str]:
    return [e.name for e in area.entries()]


HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def write_locked(tmp_path: Path) -> Iterator[Path]:
    """An area whose lockfile another process holds write-locked."""
    area = make_area(tmp_path, "AE", {"a.wl": complete_entry()})
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(area / "lockfile")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    try:
        yield area
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_new_area_held_by_a_writer_is_left_for_the_first_query(write_locked: Path) -> None:
    """The supervisor's non-blocking load of a new area must not fail on a busy lock."""
    ws = WorklistStore(str(write_locked.parent))
    ws.load_new_areas()
    area = ws.area("AE")
    assert area is not None and len(area.index) == 0  # not loaded yet


def test_read_locked_with_lock_timeout_raises(write_locked: Path) -> None:
    area = StorageArea(str(write_locked), file_reject=True, lock_timeout=0.2)
    started = time.monotonic()
    with pytest.raises(LockError) as info, area.read_locked():
        pass
    assert 0.15 <= time.monotonic() - started < 5
    assert "lockfile" in str(info.value)
    assert len(info.value.comment) <= 64


def test_read_locked_blocks_until_the_writer_releases(tmp_path: Path) -> None:
    area_dir = make_area(tmp_path, "AE", {"a.wl": complete_entry()})
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(area_dir / "lockfile")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        area = StorageArea(str(area_dir), file_reject=True)
        got = threading.Event()

        def reader() -> None:
            with area.read_locked():
                got.set()

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        assert not got.wait(0.5)  # blocked by the writer
        assert proc.stdin is not None
        proc.stdin.close()  # the writer exits, its lock is released
        proc.wait(timeout=10)
        assert got.wait(10)
        thread.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_read_lock_is_shared(tmp_path: Path) -> None:
    area_dir = make_area(tmp_path, "AE", {"a.wl": complete_entry()})
    area = StorageArea(str(area_dir), file_reject=True, lock_timeout=0.2)
    with area.read_locked(), StorageArea(str(area_dir), True, 0.2).read_locked():
        assert _names(area) == ["a.wl"]


def test_missing_lockfile(tmp_path: Path) -> None:
    area_dir = make_area(tmp_path, "AE", {"a.wl": complete_entry()}, lockfile=False)
    area = StorageArea(str(area_dir), file_reject=True)
    with pytest.raises(LockError) as info, area.read_locked():
        pass
    message = str(info.value)
    assert f"touch '{area_dir / 'lockfile'}'" in message
    assert len(info.value.comment) <= 64


@pytest.mark.parametrize("lock_timeout", [None, 30.0], ids=["wait-forever", "lock-timeout"])
def test_a_long_wait_for_the_lock_is_a_warning_naming_the_writer(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    lock_timeout: float | None,
) -> None:
    """A query held up by a writer says so, with the writer's pid and command line."""
    monkeypatch.setattr(lockfile, "SLOW_LOCK_WAIT", 0.3)
    area_dir = make_area(tmp_path, "AE", {"a.wl": complete_entry()})
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(area_dir / "lockfile")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    release = threading.Timer(0.6, proc.stdin.close)  # the wait being measured, not a sync
    try:
        assert proc.stdout.readline().strip() == "locked"
        area = StorageArea(str(area_dir), file_reject=True, lock_timeout=lock_timeout)
        release.start()
        with caplog.at_level(logging.WARNING, logger=lockfile.LOG.name), area.read_locked():
            pass
    finally:
        release.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
    (record,) = [r for r in caplog.records if "for the read lock" in r.getMessage()]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert re.search(r"waited [0-9.]+ s for the read lock on \S+lockfile", message), message
    assert f"write-locked by pid {proc.pid} (" in message, message


def test_a_lock_taken_at_once_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    area = StorageArea(str(make_area(tmp_path, "AE", {})), file_reject=True)
    with caplog.at_level(logging.DEBUG, logger=lockfile.LOG.name), area.read_locked():
        pass
    assert not [r for r in caplog.records if "read lock" in r.getMessage()]
