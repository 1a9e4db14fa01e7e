"""The indexed snapshot: same answers as a full scan, and never stale.

The index only narrows the candidates the matcher sees, so the strongest test
is a comparison: random worklists, random queries on the indexed keys (exact,
prefix, wildcards, ranges, date+time pairs, several values, empty values),
answered by an area with the index and by one without (``--no-index``: every
entry matched). The answers must be the same lists, in the same order.

Freshness: changes made to the files (add, rewrite in place, replace by
rename, delete, symlink retargeted, the area directory swapped) are seen by
the very next query, through inotify, without a full scan.
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.worklists import complete_entry, make_area, query, write_wl
from tests.unit.conftest import wire
from wlmd.worklist import keys
from wlmd.worklist.area import StorageArea
from wlmd.worklist.match import MatchOptions
from wlmd.worklist.query import FindOptions, run_find
from wlmd.worklist.respond import ResponseElement
from wlmd.worklist.store import WorklistStore

SEED = 20261121
FAMILIES = ["DOE", "DOEBLER", "MÜLLER", "MULLER", "O'NEIL", "SMITH", "SMYTH", "ÅSTRÖM", "ZHANG"]
GIVEN = ["JOHN", "JANE", "JÖRG", "ANNA", "LI", ""]
MODALITIES = ["CT", "MR", "US", "CR"]
STATIONS = ["CT01", "CT02", "MR1", "US_A", "US_B"]
DATES = ["20300510", "20300511", "20300512", "20300513", "20300514"]
TIMES = ["0700", "083000", "1200", "1630", "2300"]


def _random_entry(rng: random.Random, n: int) -> Any:
    charset = "ISO_IR 192" if rng.random() < 0.5 else "ISO_IR 100"
    given = rng.choice(GIVEN)
    name = rng.choice(FAMILIES) + (f"^{given}" if given else "")
    return complete_entry(
        SpecificCharacterSet=charset,
        PatientName=name,
        PatientID=rng.choice([f"P{n % 7}", f"P{n}", f"P{n % 3}\\Q{n}"]),
        AccessionNumber=rng.choice([f"A{n % 5}", f"ACC{n}", ""]),
        Modality=rng.choice(MODALITIES),
        ScheduledStationAETitle=rng.choice([*STATIONS, "CT01\\MR1"]),
        ScheduledProcedureStepStartDate=rng.choice(DATES),
        ScheduledProcedureStepStartTime=rng.choice(TIMES),
    )


def _random_query(rng: random.Random) -> dict[str, Any]:
    q: dict[str, Any] = {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientName": None,
        "PatientID": None,
        "AccessionNumber": None,
    }
    sps: dict[str, Any] = {
        "Modality": None,
        "ScheduledStationAETitle": None,
        "ScheduledProcedureStepStartDate": None,
        "ScheduledProcedureStepStartTime": None,
    }
    for _ in range(rng.randint(1, 3)):
        key = rng.choice(
            ["name", "id", "acc", "modality", "station", "date", "datetime", "multi", "empty"]
        )
        if key == "name":
            family = rng.choice(FAMILIES)
            q["PatientName"] = rng.choice(
                [family, family + "*", family[:2] + "*", family[:3] + "?*", "*" + family[-2:], "?*"]
            )
        elif key == "id":
            q["PatientID"] = rng.choice(["P1", "P3", "Q5", "P1*", "*", f"P{rng.randint(0, 40)}"])
        elif key == "acc":
            q["AccessionNumber"] = rng.choice(["A1", "ACC3", "A*", "ACC1?", "ACC17"])
        elif key == "modality":
            sps["Modality"] = rng.choice([*MODALITIES, "C*", "XA"])
        elif key == "station":
            sps["ScheduledStationAETitle"] = rng.choice([*STATIONS, "CT0*"])
        elif key == "date":
            d1, d2 = sorted(rng.sample(DATES, 2))
            sps["ScheduledProcedureStepStartDate"] = rng.choice(
                [d1, f"{d1}-{d2}", f"{d1}-", f"-{d2}", "20300101-20301231"]
            )
        elif key == "datetime":
            d1, d2 = sorted(rng.sample(DATES, 2))
            t1, t2 = sorted(rng.sample(TIMES, 2))
            sps["ScheduledProcedureStepStartDate"] = rng.choice([d1, f"{d1}-{d2}"])
            sps["ScheduledProcedureStepStartTime"] = rng.choice([t1, f"{t1}-{t2}", f"{t1}-"])
        elif key == "multi":
            q["PatientID"] = "P1\\P2\\Q4"
        else:
            q["PatientID"] = "P1\\"  # an empty value among others matches any value
    q["sps"] = sps
    return q


def _answer(area: StorageArea, q: dict[str, Any], match: MatchOptions) -> list[str]:
    result = run_find(
        area, wire(query(**dict(q, sps=dict(q["sps"])))), "MOD", FindOptions(match=match)
    )
    assert result.final_status == keys.SUCCESS, result
    out = []
    for nodes in result.responses:
        for node in nodes:
            if isinstance(node, ResponseElement) and node.tag == keys.PATIENT_ID:
                out.append(node.value.decode())
    return out


@pytest.fixture(scope="module")
def random_area(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(SEED)
    root = tmp_path_factory.mktemp("index")
    entries = {f"e{n:03d}.wl": _random_entry(rng, n) for n in range(300)}
    return make_area(root, "AE", entries)


@pytest.mark.parametrize(
    "match",
    [
        MatchOptions(),
        MatchOptions(wildcards_all_keys=True),
        MatchOptions(case_insensitive_names=True),
    ],
    ids=["default", "wildcards-all-keys", "case-insensitive-names"],
)
def test_index_answers_like_full_scan(random_area: Path, match: MatchOptions) -> None:
    indexed = WorklistStore(str(random_area.parent), use_index=True).area("AE")
    scanned = WorklistStore(str(random_area.parent), use_index=False).area("AE")
    assert indexed is not None and scanned is not None
    rng = random.Random(SEED + 1)
    narrowed = 0
    for _ in range(400):
        q = _random_query(rng)
        expected = _answer(scanned, q, match)
        got = _answer(indexed, q, match)
        assert got == expected, f"query {q}: index gave {got}, full scan {expected}"
        narrowed += len(got) < len(indexed.index)
    assert narrowed > 200  # the queries were selective, so the index was exercised


def test_index_narrows_candidates(random_area: Path) -> None:
    from wlmd.worklist.match import compile_mask, probes
    from wlmd.worklist.searchmask import check_search_mask

    area = WorklistStore(str(random_area.parent), use_index=True).area("AE")
    assert area is not None
    with area.read_locked():
        area.refresh()
        mask = check_search_mask(wire(query(PatientID="P5", sps={"Modality": None})), True)
        candidates = area.candidates(probes(compile_mask(mask, MatchOptions())))
    assert 0 < len(candidates) <= len(area.index) // 10


# --- freshness --------------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> tuple[Path, StorageArea]:
    root = tmp_path / "root"
    make_area(root, "AE", {f"e{n}.wl": complete_entry(PatientID=f"P{n}") for n in range(3)})
    store = WorklistStore(str(root), use_index=True)
    assert store.watch is not None, "inotify is needed for these tests"
    assert store.load_all() == 3
    area = store.area("AE")
    assert area is not None
    return root / "AE", area


def _ids(area: StorageArea) -> list[str]:
    return _answer(area, {"PatientID": None, "sps": {}}, MatchOptions())


def _full_scans(area: StorageArea, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = area._full_scan

    def counting(*args: Any) -> None:
        calls.append(1)
        original(*args)

    monkeypatch.setattr(area, "_full_scan", counting)
    return calls


def test_changes_are_seen_by_the_next_query_without_a_scan(
    live: tuple[Path, StorageArea], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, area = live
    scans = _full_scans(area, monkeypatch)
    assert _ids(area) == ["P0", "P1", "P2"]
    write_wl(directory / "e3.wl", complete_entry(PatientID="P3"))  # added
    assert _ids(area) == ["P0", "P1", "P2", "P3"]
    write_wl(directory / "e1.wl", complete_entry(PatientID="NEW1"))  # rewritten in place
    assert _ids(area) == ["P0", "NEW1", "P2", "P3"]
    write_wl(directory / "tmp.part", complete_entry(PatientID="MOVED"))
    os.rename(directory / "tmp.part", directory / "e2.wl")  # replaced by rename
    assert _ids(area) == ["P0", "NEW1", "MOVED", "P3"]
    os.unlink(directory / "e0.wl")  # removed
    assert _ids(area) == ["NEW1", "MOVED", "P3"]
    (directory / "e3.wl").write_bytes(b"not DICOM")  # broken: skipped, others served
    assert _ids(area) == ["NEW1", "MOVED"]
    assert scans == []


def test_symlink_target_changes_are_seen(
    live: tuple[Path, StorageArea], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, area = live
    (directory / "targets").mkdir()
    write_wl(directory / "targets" / "t.dcm", complete_entry(PatientID="LINKED"))
    os.symlink("targets/t.dcm", directory / "l.wl")
    assert "LINKED" in _ids(area)
    # The target lives in a subdirectory inotify does not watch: still seen.
    write_wl(directory / "targets" / "t.dcm", complete_entry(PatientID="RELINKED"))
    assert "RELINKED" in _ids(area) and "LINKED" not in _ids(area)


def test_swapped_area_directory_is_rescanned(live: tuple[Path, StorageArea]) -> None:
    directory, area = live
    assert _ids(area) == ["P0", "P1", "P2"]
    staging = directory.parent / "AE.new"
    make_area(directory.parent, "AE.new", {"x.wl": complete_entry(PatientID="X")})
    shutil.rmtree(directory)
    os.rename(staging, directory)
    assert _ids(area) == ["X"]


def test_queue_overflow_falls_back_to_a_full_scan(
    live: tuple[Path, StorageArea], monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, area = live
    scans = _full_scans(area, monkeypatch)
    watch = area._watch()
    assert watch is not None
    write_wl(directory / "e9.wl", complete_entry(PatientID="P9"))
    watch.drain()
    watch._pending.clear()  # as if the kernel had dropped the events ...
    watch._changes(str(directory)).everything = True  # ... and said so (IN_Q_OVERFLOW)
    assert _ids(area) == ["P0", "P1", "P2", "P9"]
    assert scans == [1]


def test_child_watch_misses_nothing_between_snapshot_and_fork(tmp_path: Path) -> None:
    """What the supervisor does around fork(): the child's watch + inherited pending set."""
    root = tmp_path / "root"
    make_area(root, "AE", {"a.wl": complete_entry(PatientID="A")})
    store = WorklistStore(str(root), use_index=True)
    store.load_all()
    area = store.area("AE")
    assert area is not None
    # A change the supervisor has not applied yet (queued in its own watch) ...
    write_wl(root / "AE" / "b.wl", complete_entry(PatientID="B"))
    child_watch = store.watch_for_child()
    # ... and one after the child's watch exists.
    write_wl(root / "AE" / "c.wl", complete_entry(PatientID="C"))
    store.adopt_watch(child_watch)  # what the forked worker does
    assert _ids(area) == ["A", "B", "C"]


def test_no_index_still_sees_changes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_area(root, "AE", {"a.wl": complete_entry(PatientID="A")})
    area = WorklistStore(str(root), use_index=False).area("AE")
    assert area is not None
    assert _ids(area) == ["A"]
    write_wl(root / "AE" / "b.wl", complete_entry(PatientID="B"))
    assert _ids(area) == ["A", "B"]


@pytest.mark.parametrize("size", [3, 600, 5000])
def test_posting_position_finds_each_slot_only_at_an_element_boundary(size: int) -> None:
    from array import array

    from wlmd.worklist.index import _position

    rng = random.Random(size)
    slots = rng.sample(range(1 << 24), size)
    held = array("I", slots)
    for at in [0, size - 1, *rng.sample(range(size), min(size, 50))]:
        assert _position(held, slots[at]) == at
    absent = next(n for n in range(1 << 24, 1 << 25) if n not in set(slots))
    assert _position(held, absent) == -1
    # bytes of a value spanning two elements: 0x00000100, 0x00000000 hold
    # 00 01 00 00 00 00 00 00, where 0x00000001 appears at byte offset 1
    straddle = array("I", [0x100, 0] * (size // 2 + 1))
    assert _position(straddle, 1) == -1
    assert _position(straddle, 0) == 1


# --- maintenance: random changes against a brute-force reference ------------------------


def _synthetic_entry(rng: random.Random, name: str) -> Any:
    """An entry with the indexed keys only, values drawn from small pools (many equal keys)."""
    from wlmd.worklist.entry import WorklistEntry

    sps = {
        keys.MODALITY: rng.choice(MODALITIES).encode(),
        keys.SCHEDULED_STATION_AE_TITLE: rng.choice([*STATIONS, "CT01\\MR1"]).encode(),
        keys.SPS_START_DATE: rng.choice(DATES).encode(),
    }
    family = rng.choice(FAMILIES).encode("utf-8")
    elements = {
        keys.SPECIFIC_CHARACTER_SET: b"ISO_IR 192",
        keys.PATIENT_NAME: family + rng.choice([b"", b"^JOHN", b"^ANNA"]),
        keys.PATIENT_ID: rng.choice([b"P1", b"P2", b"P3\\Q1", f"P{rng.randint(0, 99)}".encode()]),
        keys.tag("AccessionNumber"): rng.choice([b"A1", b"", f"ACC{rng.randint(0, 9)}".encode()]),
        keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE: [sps],
    }
    return WorklistEntry(name, elements, "ISO_IR 192", None)


def _brute_force_candidates(entries: dict[str, Any], probes: list[Any]) -> list[str] | None:
    """AreaIndex.candidates over a plain dict: every probe's entries found by looking at each."""
    from wlmd.worklist import index, values

    def matched(probe: Any) -> tuple[int, set[str]]:
        probe = index._as_prefix_if_name(probe)
        count, found = 0, set()
        for name, entry in entries.items():
            have = index._key_values(entry, probe.tag, probe.vr, probe.in_sps)
            if probe.kind == "equals":
                hits = len(have & set(probe.values))
            elif probe.kind == "prefix":
                hits = sum(any(v.startswith(p) for v in have) for p in set(probe.values))
            else:
                hits = sum(any(values.date_match(q, v) for q in probe.values) for v in have)
            count += hits
            if hits:
                found.add(name)
        return count, found

    sized = sorted(((*matched(p), n) for n, p in enumerate(probes)), key=lambda s: (s[0], s[2]))
    if not sized:
        return None
    chosen = sized[0][1]
    for size, found, _ in sized[1:]:
        if len(chosen) <= 64 or size > 4 * len(chosen) + len(entries) // 4:
            break
        chosen = chosen & found
    return sorted(chosen)


@pytest.mark.parametrize("seed", range(4))
def test_random_changes_keep_candidates_and_order_of_a_brute_force_reference(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wlmd.worklist import index as index_module
    from wlmd.worklist import sortedblocks
    from wlmd.worklist.index import AreaIndex
    from wlmd.worklist.match import Probe

    monkeypatch.setattr(sortedblocks, "BLOCK", 8)  # many blocks, splits and merges
    monkeypatch.setattr(index_module, "LONG_POSTING", 6)  # long postings as SortedSlots
    rng = random.Random(seed)
    index = AreaIndex()
    reference: dict[str, Any] = {}
    sps = True
    probe_sets = [
        [Probe(keys.PATIENT_ID, "LO", False, "equals", ("P1", "Q1"))],
        [Probe(keys.PATIENT_NAME, "PN", False, "prefix", ("DO",))],
        [Probe(keys.PATIENT_NAME, "PN", False, "equals", ("MÜLLER^ANNA",))],
        [
            Probe(keys.MODALITY, "CS", sps, "equals", ("CT",)),
            Probe(keys.SPS_START_DATE, "DA", sps, "date", ("20300511-20300513",)),
        ],
        [
            Probe(keys.SCHEDULED_STATION_AE_TITLE, "AE", sps, "equals", ("CT01", "MR1")),
            Probe(keys.tag("AccessionNumber"), "SH", False, "equals", ("A1",)),
        ],
    ]
    for step in range(600):
        name = f"e{rng.randrange(150):03d}.wl"
        if name in reference and rng.random() < 0.4:
            index.remove(reference.pop(name))
        else:
            reference[name] = _synthetic_entry(rng, name)
            index.add(reference[name])  # a new file or a changed one
        if step % 25 == 0:
            restored = AreaIndex.restore(index.export(), dict(reference))
            for checked in (index, restored):
                assert [e.name for e in checked.ordered()] == sorted(reference)
                for probes in probe_sets:
                    found = checked.candidates(probes)
                    got = None if found is None else [e.name for e in found]
                    assert got == _brute_force_candidates(reference, probes), (step, probes)


def test_a_long_posting_restored_from_an_older_cache_is_kept_in_sorted_blocks() -> None:
    """A long posting is bisected once restored: it must be sorted then, whatever the file held."""
    from array import array

    from wlmd.worklist.index import LONG_POSTING, AreaIndex
    from wlmd.worklist.sortedblocks import SortedSlots

    rng = random.Random(SEED)
    entries = {
        f"e{n:05d}.wl": _synthetic_entry(rng, f"e{n:05d}.wl") for n in range(6 * LONG_POSTING)
    }
    index = AreaIndex()
    for entry in entries.values():
        index.add(entry)
    state = index.export()
    modality = state[2][3]  # EQUALS_KEYS: PatientID, AccessionNumber, station, Modality
    long_values = [
        v
        for v, held in modality.items()
        if not isinstance(held, int) and len(held) > 4 * LONG_POSTING
    ]
    assert long_values
    for value in long_values:
        unsorted = array("I")
        unsorted.frombytes(modality[value])
        rng.shuffle(unsorted)  # type: ignore[arg-type]
        modality[value] = unsorted.tobytes()
    restored = AreaIndex.restore(state, entries)
    postings = restored._equals[(keys.MODALITY, True)].map
    for value in long_values:
        assert isinstance(postings[value], SortedSlots)
        assert list(postings[value]) == sorted(index._equals[(keys.MODALITY, True)].map[value])


def test_candidates_are_exactly_both_probes_intersected(random_area: Path) -> None:
    """Modality + a date range (issue 16's slow query): the index hands the matcher
    exactly the entries meeting both probes, a multi-date range being the union of
    its dates' postings; neither more (the matcher would pay per extra entry) nor fewer.
    """
    from wlmd.worklist.match import compile_mask, probes
    from wlmd.worklist.searchmask import check_search_mask

    area = WorklistStore(str(random_area.parent), use_index=True).area("AE")
    assert area is not None
    dates = "20300511-20300513"
    with area.read_locked():
        area.refresh()
        mask = check_search_mask(
            wire(query(sps={"Modality": "CT", "ScheduledProcedureStepStartDate": dates})), True
        )
        candidates = area.candidates(probes(compile_mask(mask, MatchOptions())))
        items = [(e.name, item) for e in area.index.ordered() for item in e.sps_text or []]
    computed_tomography = {name for name, item in items if item.get(keys.MODALITY) == "CT"}
    expected = sorted(
        name
        for name, item in items
        if name in computed_tomography
        and "20300511" <= (item.get(keys.SPS_START_DATE) or "") <= "20300513"
    )
    # The smaller probe alone is past SMALL_ENOUGH, so the second one is intersected.
    assert len(computed_tomography) > 64 and len(expected) < len(computed_tomography)
    assert [e.name for e in candidates] == expected
