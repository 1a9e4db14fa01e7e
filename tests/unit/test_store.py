"""Storage areas: which files are served, the parse cache, the lockfile protocol."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.worklists import DROP, complete_entry, make_area, write_wl
from wlmd.worklist import area as area_module
from wlmd.worklist import lockfile
from wlmd.worklist.area import StorageArea
from wlmd.worklist.layout import is_valid_area_name
from wlmd.worklist.lockfile import LockError
from wlmd.worklist.store import WorklistStore


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging if something blocks (e.g. opening a FIFO)."""

    def on_alarm(signum, frame):  # type: ignore[no-untyped-def]
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _names(area: StorageArea) -> list[str]:
    return [e.name for e in area.entries()]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("", False),
        (" ", False),
        ("A" * 16, True),
        ("A" * 16 + "  ", True),  # trailing padding is not part of the title
        ("A" * 17, False),
        ("../x", False),
        ("..", False),
        ("a/b", False),
        ("a.b", False),
        ("OK_AE-1:@ ", True),
        ("ÄÖ", False),
        ("WLMD", True),
        ("A\\B", False),
        ("A\x00", False),
    ],
)
def test_is_valid_area_name(name: str, valid: bool) -> None:
    assert is_valid_area_name(name) is valid


def test_files_served_in_name_order(tmp_path: Path) -> None:
    area = make_area(
        tmp_path,
        "AE",
        {"b.wl": complete_entry(), "a.wl": complete_entry(), "c.wl": complete_entry()},
    )
    assert _names(StorageArea(str(area), file_reject=True)) == ["a.wl", "b.wl", "c.wl"]


def test_only_dot_wl_files_no_recursion(tmp_path: Path) -> None:
    ds = complete_entry()
    area = make_area(tmp_path, "AE", {"ok.wl": ds, "upper.WL": ds, "backup.wl.bak": ds, "noext": ds,
                                      "x.wlx": ds, "sub/inner.wl": ds})  # fmt: skip
    assert _names(StorageArea(str(area), file_reject=True)) == ["ok.wl"]


@pytest.mark.parametrize(
    "content",
    [b"", b"not dicom at all\n", b"\x00" * 128 + b"DICM" + b"\x02\x00"],
    ids=["zero-length", "text", "truncated"],
)
def test_bad_files_skipped_with_a_log_line(tmp_path: Path, content: bytes, caplog) -> None:  # type: ignore[no-untyped-def]
    area = make_area(tmp_path, "AE", {"bad.wl": content, "good.wl": complete_entry()})
    with caplog.at_level(logging.WARNING, logger="wlmd.worklist.store"):
        assert _names(StorageArea(str(area), file_reject=True)) == ["good.wl"]
    assert "bad.wl" in caplog.text


def test_directory_named_wl_skipped(tmp_path: Path) -> None:
    area = make_area(tmp_path, "AE", {"good.wl": complete_entry()})
    (area / "dir.wl").mkdir()
    assert _names(StorageArea(str(area), file_reject=True)) == ["good.wl"]


def test_fifo_named_wl_does_not_block(tmp_path: Path, alarm: None) -> None:
    area = make_area(tmp_path, "AE", {"good.wl": complete_entry()})
    os.mkfifo(area / "pipe.wl")
    assert _names(StorageArea(str(area), file_reject=True)) == ["good.wl"]


def test_symlinks(tmp_path: Path) -> None:
    outside = write_wl(tmp_path / "outside" / "secret.wl", complete_entry())
    area = make_area(tmp_path, "AE", {"real.wl": complete_entry()})
    (area / "out.wl").symlink_to(outside)
    (area / "in.wl").symlink_to(area / "real.wl")
    (area / "dangling.wl").symlink_to(tmp_path / "missing.wl")
    assert _names(StorageArea(str(area), file_reject=True)) == ["in.wl", "real.wl"]


def test_file_reject(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    area = make_area(
        tmp_path,
        "AE",
        {"bad.wl": complete_entry(ScheduledProcedureStepID=DROP), "ok.wl": complete_entry()},
    )
    with caplog.at_level(logging.WARNING, logger="wlmd.worklist.store"):
        assert _names(StorageArea(str(area), file_reject=True)) == ["ok.wl"]
    assert "ScheduledProcedureStepID" in caplog.text
    assert _names(StorageArea(str(area), file_reject=False)) == ["bad.wl", "ok.wl"]


def test_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    area_dir = make_area(
        tmp_path, "AE", {"a.wl": complete_entry(), "b.wl": complete_entry(PatientID=DROP)}
    )
    calls: list[str] = []
    real = area_module.load_entry

    def counting(path: str, name: str):  # type: ignore[no-untyped-def]
        calls.append(name)
        return real(path, name)

    monkeypatch.setattr(area_module, "load_entry", counting)
    area = StorageArea(str(area_dir), file_reject=True)
    with caplog.at_level(logging.WARNING, logger="wlmd.worklist.store"):
        first = area.entries()
        assert sorted(calls) == ["a.wl", "b.wl"]
        assert caplog.text.count("b.wl") == 1
        second = area.entries()
    assert sorted(calls) == ["a.wl", "b.wl"]  # unchanged: not parsed again
    assert second[0] is first[0]
    assert caplog.text.count("b.wl") == 1  # a bad file is logged once per change

    write_wl(area_dir / "a.wl", complete_entry(PatientID="NEW"))
    st = os.stat(area_dir / "a.wl")
    os.utime(area_dir / "a.wl", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    third = area.entries()
    assert calls.count("a.wl") == 2
    assert third[0].elements[0x00100020] == b"NEW"

    (area_dir / "a.wl").unlink()
    assert area.entries() == []


def test_store_area(tmp_path: Path) -> None:
    make_area(tmp_path, "WLMD", {"a.wl": complete_entry()})
    (tmp_path / "plain").write_text("x")
    ws = WorklistStore(str(tmp_path))
    area = ws.area("WLMD  ")
    assert area is not None
    assert area.path == str(tmp_path / "WLMD")
    assert ws.area("WLMD") is area
    assert ws.area("OTHER") is None
    assert ws.area("plain") is None
    assert ws.area("../WLMD") is None
    assert ws.area("") is None


# --- lockfile ------------------------------------------------------------------------

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
