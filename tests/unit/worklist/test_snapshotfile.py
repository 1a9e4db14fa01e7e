"""The snapshot cache: what a restart reads back instead of parsing, and when it must not.

Real files in a temporary storage area, a real cache file; each test compares
a store restored from the cache with one that parsed everything (or with the
files themselves). ``RACY_MARGIN_NS`` is set to 0 where a test needs files
written a moment ago to count as settled (else they are parsed again, which
one test checks on its own).
"""

from __future__ import annotations

import json
import logging
import os
import struct
from pathlib import Path

import pytest

from tests.helpers.worklists import complete_entry, make_area, write_wl
from wlmd.worklist import area as area_module
from wlmd.worklist import snapshotfile
from wlmd.worklist.match import Probe
from wlmd.worklist.store import WorklistStore

AREA = "WLMD"


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files written before a scan count as settled (no "racy" margin)."""
    monkeypatch.setattr(area_module, "RACY_MARGIN_NS", 0)


def _entries(n: int) -> dict[str, object]:
    return {
        f"e{k:03d}.wl": complete_entry(
            PatientID=f"P{k}",
            PatientName=f"Name{k % 7}^Given{k}",
            AccessionNumber=f"A{k}",
            Modality=("CT", "MR", "US")[k % 3],
            ScheduledStationAETitle=f"S{k % 4}",
        )
        for k in range(n)
    }


def _store(root: Path, cache: Path, **options: object) -> WorklistStore:
    return WorklistStore(str(root), use_index=True, snapshot_cache=str(cache), **options)  # type: ignore[arg-type]


def _view(store: WorklistStore) -> dict[str, object]:
    """What queries can see: every entry's content, by file name."""
    area = store.area(AREA)
    assert area is not None
    with area.read_locked():
        return {e.name: (e.elements, e.charset, e.pregnancy_status) for e in area.entries()}


def _fresh(root: Path) -> dict[str, object]:
    """The same files parsed by a store without a cache."""
    store = WorklistStore(str(root), use_index=True)
    store.load_all()
    return _view(store)


def _parsed(store: WorklistStore) -> int:
    area = store.area(AREA)
    assert area is not None
    return area.parsed


def _saved(root: Path, cache: Path) -> WorklistStore:
    """A store that loaded ``root`` and wrote its cache file."""
    store = _store(root, cache)
    store.load_all()
    store.save_cache()
    return store


def _cached_run(root: Path, cache: Path) -> WorklistStore:
    first = _store(root, cache)
    first.load_all()
    assert first.cache_outdated()
    first.save_cache()
    second = _store(root, cache)
    second.load_all()
    return second


def test_restart_parses_nothing_and_answers_the_same(
    tmp_path: Path, settled: None, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    make_area(root, AREA, _entries(30))
    caplog.set_level(logging.INFO, "wlmd.worklist.store")
    second = _cached_run(root, tmp_path / "cache")
    assert _parsed(second) == 0
    assert not second.cache_outdated()
    assert _view(second) == _fresh(root)
    assert "0 of 30 worklist files parsed again" in caplog.text


def test_index_restored_equals_index_built(tmp_path: Path, settled: None) -> None:
    root = tmp_path / "data"
    make_area(root, AREA, _entries(40))
    (root / AREA / "e005.wl").unlink()  # a free slot in the first store's index
    first = _store(root, tmp_path / "cache")
    first.load_all()
    write_wl(root / AREA / "e005.wl", complete_entry(PatientID="P5"))
    area = first.area(AREA)
    assert area is not None
    with area.read_locked():
        area.rescan()
        area.refresh()
    first.save_cache()
    second = _store(root, tmp_path / "cache")
    second.load_all()
    restored = second.area(AREA)
    assert restored is not None and _parsed(second) == 0
    assert restored.index.export() == area.index.export()
    built = WorklistStore(str(root), use_index=True)
    built.load_all()
    rebuilt = built.area(AREA)
    assert rebuilt is not None
    probes = [
        Probe(0x00100020, "LO", False, "equals", ("P7",)),
        Probe(0x00400001, "AE", True, "equals", ("S1",)),
        Probe(0x00080060, "CS", True, "equals", ("MR",)),
        Probe(0x00100010, "PN", False, "prefix", ("Name3",)),
    ]
    for probe in probes:
        got = restored.index.candidates([probe])
        want = rebuilt.index.candidates([probe])
        assert got is not None and want is not None
        assert [e.name for e in got] == [e.name for e in want], probe


def test_changes_while_stopped_are_seen(tmp_path: Path, settled: None) -> None:
    """Added, removed, rewritten with the same size and mtime, replaced by rename."""
    root = tmp_path / "data"
    directory = make_area(root, AREA, _entries(10))
    cache = tmp_path / "cache"
    _saved(root, cache)
    same_size = directory / "e001.wl"
    before = same_size.stat()
    data = same_size.read_bytes()
    changed = data.replace(b"P1", b"Q1")
    assert len(changed) == len(data) and changed != data
    same_size.write_bytes(changed)
    os.utime(same_size, ns=(before.st_atime_ns, before.st_mtime_ns))  # mtime as before
    (directory / "e002.wl").unlink()
    write_wl(directory / "e003.tmp", complete_entry(PatientID="RENAMED"))
    os.rename(directory / "e003.tmp", directory / "e003.wl")
    write_wl(directory / "new.wl", complete_entry(PatientID="NEW"))
    second = _store(root, cache)
    second.load_all()
    assert _parsed(second) == 3  # e001, e003, new
    view = _view(second)
    assert view == _fresh(root)
    assert "e002.wl" not in view and "new.wl" in view
    assert second.cache_outdated()


def test_unusable_files_are_logged_again_after_a_restart(
    tmp_path: Path, settled: None, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    make_area(root, AREA, {"good.wl": complete_entry(), "bad.wl": b"not DICOM at all"})
    cache = tmp_path / "cache"
    _saved(root, cache)
    caplog.clear()
    second = _store(root, cache)
    second.load_all()
    assert _parsed(second) == 0
    assert caplog.text.count("bad.wl skipped: not a DICOM file") == 1
    assert list(_view(second)) == ["good.wl"]


def test_files_changed_just_before_the_scan_are_parsed_again(tmp_path: Path) -> None:
    """Without the test margin of 0: a change in the same clock tick as our stat()
    could keep the ctime, so fresh files are never trusted from the cache."""
    root = tmp_path / "data"
    make_area(root, AREA, _entries(5))
    second = _cached_run(root, tmp_path / "cache")
    assert _parsed(second) == 5
    assert _view(second) == _fresh(root)


def test_no_cache_file_yet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "data"
    make_area(root, AREA, _entries(3))
    caplog.set_level(logging.INFO, "wlmd.worklist.store")
    store = _store(root, tmp_path / "cache")
    store.load_all()
    assert "does not exist yet: parsing every worklist file" in caplog.text
    assert store.cache_outdated() and _parsed(store) == 3


def _rewrite_header(path: Path, **fields: object) -> None:
    data = path.read_bytes()
    at = len(snapshotfile.MAGIC)
    (length,) = struct.unpack_from("<Q", data, at)
    header = json.loads(data[at + 8 : at + 8 + length])
    header.update(fields)
    encoded = json.dumps(header).encode()
    path.write_bytes(
        data[:at] + struct.pack("<Q", len(encoded)) + encoded + data[at + 8 + length :]
    )


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def _flip_payload_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-50] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (_truncate, "truncated"),
        (_flip_payload_byte, "checksum mismatch"),
        (lambda p: p.write_bytes(b"garbage"), "not a wlmd snapshot file"),
        (lambda p: p.write_bytes(p.read_bytes()[:30]), "truncated in its header"),
        (lambda p: _rewrite_header(p, wlmd="0.0.1"), "another wlmd version"),
        (lambda p: _rewrite_header(p, format=999), "another snapshot format"),
        (lambda p: _rewrite_header(p, python=[3, 1]), "another Python version"),
        (lambda p: _rewrite_header(p, data_files_path="/elsewhere"), "another data files path"),
        (lambda p: _rewrite_header(p, file_reject=False), "--enable-file-reject"),
    ],
)
def test_unusable_cache_file_logged_and_everything_parsed(
    tmp_path: Path, settled: None, caplog: pytest.LogCaptureFixture, damage, reason: str
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "data"
    make_area(root, AREA, _entries(8))
    cache = tmp_path / "cache"
    _saved(root, cache)
    damage(cache)
    caplog.clear()
    second = _store(root, cache)
    second.load_all()
    assert f"snapshot cache {cache} not used: " in caplog.text
    assert reason in caplog.text
    assert _parsed(second) == 8
    assert _view(second) == _fresh(root)
    assert second.cache_outdated()  # written again


def test_another_data_path_with_the_same_area_name(tmp_path: Path, settled: None) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    make_area(one, AREA, _entries(4))
    make_area(two, AREA, {"e000.wl": complete_entry(PatientID="OTHER")})
    cache = tmp_path / "cache"
    first = _store(one, cache)
    first.load_all()
    first.save_cache()
    second = _store(two, cache)
    second.load_all()
    assert _view(second) == _fresh(two)


def test_area_directory_replaced(
    tmp_path: Path, settled: None, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "data"
    directory = make_area(root, AREA, _entries(4))
    cache = tmp_path / "cache"
    _saved(root, cache)
    os.rename(directory, root / "old")
    make_area(root, AREA, {"e000.wl": complete_entry(PatientID="REPLACED")})
    second = _store(root, cache)
    second.load_all()
    assert "the area directory was replaced" in caplog.text
    assert _view(second) == _fresh(root)


def test_cache_file_written_atomically_and_private(tmp_path: Path, settled: None) -> None:
    root = tmp_path / "data"
    make_area(root, AREA, _entries(2))
    cache = tmp_path / "cache"
    (tmp_path / f"cache.{2**22 + 1}.tmp").write_bytes(b"left by a killed writer")
    store = _store(root, cache)
    store.load_all()
    size = store.save_cache()
    assert cache.stat().st_size == size
    assert cache.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "data"]


def test_an_entry_that_does_not_fit_its_shape_is_not_used(
    tmp_path: Path, settled: None, caplog: pytest.LogCaptureFixture
) -> None:
    """A well-formed file (CRC right) whose packed entry disagrees with its layout: the
    area is parsed, never read from a blob its offsets would misread."""
    root = tmp_path / "data"
    make_area(root, AREA, _entries(4))
    cache = tmp_path / "cache"
    first = _saved(root, cache)
    identity = first.identity()
    (state,) = snapshotfile.read(str(cache), identity)
    *head, shapes, files, index = state
    name, *signature, symlink, problem, (number, blob, charset, pregnancy) = files[0]
    files[0] = (name, *signature, symlink, problem, (number, blob[:-3], charset, pregnancy))
    snapshotfile.write(str(cache), identity, [(*head, shapes, files, index)])
    caplog.clear()
    second = _store(root, cache)
    second.load_all()
    assert f"area {AREA} not used: malformed file records" in caplog.text
    assert _parsed(second) == 4
    assert _view(second) == _fresh(root)
