"""WorklistSnapshot.refresh says whether the snapshot changed: only then are spares stale.

Each stale spare worker retires after one association and the supervisor
forks another (~120 ms at 2.7 GB, 1,000,000 entries; issue 16). Most
wake-ups of the select loop change nothing: the lockfile protocol's
temporary file, a refresh that found the area write-locked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.worklists import complete_entry, make_area, write_wl
from wlmd.services.catalogue import Catalogue
from wlmd.services.mwlsnapshot import WorklistSnapshot
from wlmd.settings.config import Config


@pytest.fixture
def snapshot(tmp_path: Path) -> tuple[Path, WorklistSnapshot]:
    root = tmp_path / "data"
    make_area(root, "AE", {"a.wl": complete_entry(PatientID="A")})
    make_area(root, "OTHER", {"o.wl": complete_entry(PatientID="O")})
    snap = WorklistSnapshot(Config(port=104, data_files_path=str(root), snapshot_cache="none"))
    snap.preload()
    assert snap.store.watch is not None, "inotify is needed for this test"
    assert not snap.refresh()  # the start-up scan's own events
    return root, snap


def test_a_temporary_file_changes_nothing(snapshot: tuple[Path, WorklistSnapshot]) -> None:
    root, snap = snapshot
    tmp = root / "AE" / ".b.wl.tmp"
    write_wl(tmp, complete_entry(PatientID="B"))
    assert not snap.refresh()
    os.rename(tmp, root / "AE" / "b.wl")
    assert snap.refresh()
    assert not snap.refresh()


def test_a_refresh_delayed_by_a_writer_changes_nothing_until_applied(
    snapshot: tuple[Path, WorklistSnapshot],
) -> None:
    root, snap = snapshot
    # fcntl locks are per process: the writer must be another one.
    holder = "import fcntl, sys; f = open(sys.argv[1], 'rb+'); fcntl.lockf(f, fcntl.LOCK_EX); "
    holder += "print('locked', flush=True); sys.stdin.read()"
    writer = subprocess.Popen(
        [sys.executable, "-c", holder, str(root / "AE" / "lockfile")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "locked\n"
        write_wl(root / "AE" / "b.wl", complete_entry(PatientID="B"))
        assert not snap.refresh()  # write-locked: retried later
    finally:
        writer.communicate("", timeout=10)  # EOF: the writer exits, its lock goes
    assert snap.refresh()


def test_a_vanished_area_is_a_change(snapshot: tuple[Path, WorklistSnapshot]) -> None:
    """Also when the area had changed as often as it counts for (generation never goes back)."""
    root, snap = snapshot
    write_wl(root / "OTHER" / "p.wl", complete_entry(PatientID="P"))
    assert snap.refresh()
    before = snap.store.generation()
    shutil.rmtree(root / "OTHER")
    assert snap.refresh()
    assert snap.store.generation() > before


def test_the_catalogue_reports_a_change_of_any_part(tmp_path: Path) -> None:
    root = tmp_path / "data"
    make_area(root, "AE", {"a.wl": complete_entry(PatientID="A")})
    catalogue = Catalogue(Config(port=104, data_files_path=str(root), snapshot_cache="none"))
    catalogue.preload()
    assert not catalogue.refresh()
    write_wl(root / "AE" / "b.wl", complete_entry(PatientID="B"))
    assert catalogue.refresh()
