"""The authoring API on a real directory: lock protocol, modes, replacement, removal.

Lock holders are separate processes (POSIX locks do not conflict within one
process), started with a pipe that says when the lock is held.
"""

from __future__ import annotations

import datetime as _dt
import grp
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, complete_entry, write_wl
from wlmd.authoring import editor as editor_module
from wlmd.authoring.editor import AreaEditor
from wlmd.authoring.errors import AreaProblem, BadInput, EntryRejected, LockTimeout, NotFound
from wlmd.authoring.selection import Selection

HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX if sys.argv[2] == "write" else fcntl.LOCK_SH)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def area(tmp_path: Path) -> Path:
    path = tmp_path / "WLMD"
    path.mkdir()
    (path / "lockfile").touch()
    return path


@contextmanager
def lock_held(area: Path, kind: str = "write") -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(area / "lockfile"), kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=10)


def wl_files(area: Path) -> list[str]:
    return sorted(p.name for p in area.iterdir() if p.name != "lockfile")


def test_put_then_replace(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD")
    first = editor.put(complete_entry())
    assert not first.replaced and first.generated == {}
    again = editor.put(complete_entry(PatientName="DOE^JANE"))
    assert again.name == first.name and again.replaced
    assert wl_files(area) == [first.name]
    [listed] = editor.entries()
    assert listed.entry is not None
    assert listed.entry.root_text.get(0x00100010) == "DOE^JANE"


def test_resubmitted_order_keeps_its_generated_values(area: Path) -> None:
    """By accession: the StudyInstanceUID generated the first time stays."""
    editor = AreaEditor(str(area.parent), "WLMD")
    order = {"StudyInstanceUID": DROP, "ScheduledProcedureStepID": DROP}
    first = editor.put(complete_entry(**order))
    second = editor.put(complete_entry(Modality="MR", **order))
    assert second.replaced and second.name == first.name
    assert second.generated == first.generated
    stored = editor.get(first.name)
    assert stored.StudyInstanceUID == first.generated["StudyInstanceUID"]
    assert stored.ScheduledProcedureStepSequence[0].Modality == "MR"


def test_generated_values_avoid_the_areas(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD")
    written = [
        editor.put(
            complete_entry(
                **{
                    "StudyInstanceUID": DROP,
                    "AccessionNumber": DROP,
                    "RequestedProcedureID": DROP,
                    "ScheduledProcedureStepID": DROP,
                }
            )
        )
        for _ in range(20)
    ]
    names = {w.name for w in written}
    assert len(names) == 20
    for keyword in ("AccessionNumber", "RequestedProcedureID", "ScheduledProcedureStepID"):
        assert len({w.generated[keyword] for w in written}) == 20


def test_values_in_use_are_read_from_the_area(area: Path) -> None:
    """Another writer's files count: their values are in the used set."""
    write_wl(area / "ris.wl", complete_entry(AccessionNumber="RIS-1", RequestedProcedureID="RP-9"))
    editor = AreaEditor(str(area.parent), "WLMD")
    used = editor._used_values()
    assert used.taken("AccessionNumber", "RIS-1")
    assert used.taken("RequestedProcedureID", "RP-9")


def test_modes_follow_the_area(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD")
    area.chmod(0o2770)
    private = area / editor.put(complete_entry()).name
    assert stat.S_IMODE(private.stat().st_mode) == 0o640
    area.chmod(0o755)
    public = area / editor.put(complete_entry(AccessionNumber="X2", StudyInstanceUID="1.2.9")).name
    assert stat.S_IMODE(public.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="chgrp to another group needs root")
def test_group_is_the_areas(area: Path) -> None:
    other = grp.getgrnam("nogroup").gr_gid
    os.chown(area, -1, other)
    area.chmod(0o770)  # no setgid: the writer sets the group itself
    written = AreaEditor(str(area.parent), "WLMD").put(complete_entry())
    assert (area / written.name).stat().st_gid == other


def test_write_lock_timeout_names_the_holder(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD", lock_timeout=0.3)
    with lock_held(area, "write") as holder:
        with pytest.raises(LockTimeout) as timed_out:
            editor.put(complete_entry())
        assert f"by pid {holder.pid}" in timed_out.value.reason
        assert "0.3 s" in timed_out.value.reason
    assert wl_files(area) == []
    editor.put(complete_entry())  # released: works


def test_a_reader_holds_off_the_writer(area: Path) -> None:
    """A query's read lock: the writer waits (here: times out) and names it."""
    editor = AreaEditor(str(area.parent), "WLMD", lock_timeout=0.2)
    with lock_held(area, "read") as reader:
        with pytest.raises(LockTimeout) as timed_out:
            editor.put(complete_entry())
        assert f"by pid {reader.pid}" in timed_out.value.reason


def test_a_writer_holds_off_a_listing(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD", lock_timeout=0.2)
    with lock_held(area, "write"), pytest.raises(AreaProblem):
        editor.entries()


def test_remove_and_not_found(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD")
    name = editor.put(complete_entry()).name
    with pytest.raises(NotFound):
        editor.remove([name, "order-nothing.wl"])
    assert wl_files(area) == [name], "all or nothing"
    assert editor.remove([name]) == [name]
    assert wl_files(area) == []
    with pytest.raises(BadInput):
        editor.remove(["../lockfile"])


def test_remove_where(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD")
    ct = editor.put(complete_entry(AccessionNumber="A1", StudyInstanceUID="1.1")).name
    mr = editor.put(complete_entry(AccessionNumber="A2", StudyInstanceUID="1.2", Modality="MR"))
    assert editor.remove_where(Selection(modality="CT")) == [ct]
    assert wl_files(area) == [mr.name]


def test_purge(area: Path) -> None:
    editor = AreaEditor(str(area.parent), "WLMD")
    old = editor.put(complete_entry(ScheduledProcedureStepStartDate="20240101")).name
    new = editor.put(
        complete_entry(ScheduledProcedureStepStartDate="20990101", StudyInstanceUID="1.3")
    ).name
    write_wl(
        area / "incomplete-old.wl",
        complete_entry(PatientID="", **{"ScheduledProcedureStepStartDate": "20000101"}),
    )
    removed = editor.purge(_dt.date(2025, 1, 1))
    assert sorted(removed) == sorted([old, "incomplete-old.wl"])
    assert wl_files(area) == [new]


def test_put_many_in_batches(area: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(editor_module, "BATCH", 7)
    editor = AreaEditor(str(area.parent), "WLMD")
    items: list[Dataset | BadInput] = [
        complete_entry(AccessionNumber=f"B{n}", StudyInstanceUID=DROP) for n in range(20)
    ]
    items.insert(5, BadInput("unreadable input"))
    items.insert(9, complete_entry(PatientID=""))
    seen = []
    results = editor.put_many(items, lambda count, result: seen.append(count))
    assert seen == list(range(1, 23))
    assert isinstance(results[5], BadInput)
    assert isinstance(results[9], EntryRejected)
    assert len(wl_files(area)) == 20
    assert not [n for n in os.listdir(area) if n.endswith(".tmp")]


def test_area_problems(tmp_path: Path) -> None:
    with pytest.raises(AreaProblem, match="cannot name a storage area"):
        AreaEditor(str(tmp_path), "../etc")
    with pytest.raises(AreaProblem, match="no storage area"):
        AreaEditor(str(tmp_path), "MISSING").put(complete_entry())
    (tmp_path / "NOLOCK").mkdir()
    with pytest.raises(AreaProblem, match="touch"):
        AreaEditor(str(tmp_path), "NOLOCK").put(complete_entry())
