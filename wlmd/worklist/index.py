"""Indexes over one storage area's entries, on the keys modalities actually query.

A modality asks for "my station, today" or "this patient / accession"; the
index turns such a query into a few candidate entries instead of every file
of the area. It only ever *narrows*: :mod:`wlmd.worklist.match` still decides
each candidate, so an index can let through too much but, by construction
(:class:`wlmd.worklist.match.Probe`), never keeps out a match. Answers are
therefore the same with and without it (``--no-index``), which the tests
check by comparing both on random data.

Indexed keys: PatientID and AccessionNumber (exact), PatientName (prefix, up
to the first wildcard), and in the Scheduled Procedure Step items
ScheduledStationAETitle and Modality (exact) and the start date (dates,
tested with the matcher's own date function). Values are the decoded,
normalised texts the matcher compares, one index key per value of a
multi-valued attribute.

Entries are numbered (slots) and the indexes hold slot numbers in
``array('I')`` buffers, not references to Python objects. That matters after
fork(): reading an array does not touch the objects it lists, whereas putting
thousands of shared strings into a set writes their reference counts and so
copies every page they live on into the worker (measured: a query with 15,000
candidates at 100,000 entries spent most of its time in such page copies).
Only the entries that are finally matched are touched.
"""

from __future__ import annotations

import dataclasses
from array import array
from collections.abc import Collection, Iterable
from typing import TypeAlias

from wlmd.worklist import keys, values
from wlmd.worklist.entry import WorklistEntry
from wlmd.worklist.match import Probe
from wlmd.worklist.sortedblocks import SortedPairs, SortedSlots

#: (tag, VR, in SPS item) of the keys looked up exactly.
EQUALS_KEYS = (
    (keys.PATIENT_ID, "LO", False),
    (keys.tag("AccessionNumber"), "SH", False),
    (keys.SCHEDULED_STATION_AE_TITLE, "AE", True),
    (keys.MODALITY, "CS", True),
)
PREFIX_KEY = (keys.PATIENT_NAME, "PN", False)
#: Candidates few enough that the matcher is cheaper than another intersection.
SMALL_ENOUGH = 64
DATE_KEY = (keys.SPS_START_DATE, "DA", True)


#: A posting longer than this is kept as :class:`SortedSlots` (blocks in slot order):
#: changing it then costs the same at any size; shorter ones stay one small array.
LONG_POSTING = 2048

#: The slots of one value: one slot, a short array, or a long posting's blocks.
Posting: TypeAlias = "int | array[int] | SortedSlots"


class _Postings:
    """value -> slot numbers; a lone slot as an int, several in an ``array('I')``,
    many (LONG_POSTING) in :class:`SortedSlots`."""

    def __init__(self) -> None:
        self.map: dict[str, Posting] = {}

    def add(self, value: str, slot: int) -> None:
        held = self.map.get(value)
        if held is None:
            self.map[value] = slot
        elif isinstance(held, int):
            if held != slot:
                self.map[value] = array("I", (held, slot))
        elif isinstance(held, SortedSlots):
            held.add(slot)
        else:
            held.append(slot)  # an entry adds each of its values once: no duplicates
            if len(held) > LONG_POSTING:
                self.map[value] = SortedSlots(held)

    def remove(self, value: str, slot: int) -> None:
        held = self.map.get(value)
        if held is None:
            return
        if isinstance(held, int):
            if held == slot:
                del self.map[value]
            return
        if isinstance(held, SortedSlots):
            held.remove(slot)
            if len(held) == 1:
                self.map[value] = next(iter(held))
            return
        at = _position(held, slot)
        if at >= 0:
            # The last slot fills the hole: order within a posting means nothing (a
            # lookup makes a set of it), and a forked worker copies two pages of the
            # array, not every page after ``at`` as ``del held[at]`` would.
            last = held.pop()
            if at < len(held):
                held[at] = last
        if len(held) == 1:
            self.map[value] = held[0]

    def slots(self, value: str) -> Collection[int]:
        held = self.map.get(value)
        if held is None:
            return ()
        return (held,) if isinstance(held, int) else held


#: Postings longer than this are searched as bytes (see :func:`_position`).
_SCAN_AS_BYTES = 512


def _position(held: array[int], slot: int) -> int:
    """Where ``slot`` is in ``held`` (at most LONG_POSTING slots), or -1.

    ``slot in held`` / ``held.remove(slot)`` turn every element into a Python int
    as they go: 3.6 ms for a posting of 170,000 slots (one modality's entries at
    1,000,000), twice per changed file and big posting, which made a restart
    after 10,000 changes 6-7 ms a file. A search of the array's bytes for the
    slot's four bytes (kept only at an element boundary) is ~7x faster.
    """
    if len(held) <= _SCAN_AS_BYTES:
        try:
            return held.index(slot)
        except ValueError:
            return -1
    data = held.tobytes()
    needle = array(held.typecode, (slot,)).tobytes()
    size = held.itemsize
    at = data.find(needle)
    while at != -1 and at % size:
        at = data.find(needle, at + 1)
    return -1 if at == -1 else at // size


def _key_values(entry: WorklistEntry, tag: int, vr: str, in_sps: bool) -> set[str]:
    texts: list[str] = []
    if in_sps:
        texts = [item[tag] for item in entry.sps_text or () if item.get(tag)]
    elif entry.root_text.get(tag):
        texts = [entry.root_text[tag]]
    return {v for text in texts for v in values.split_values(vr, text) if v}


def _prefix_ranges(prefixes: Iterable[str]) -> list[tuple[str, str]]:
    """The key ranges [lo, hi) of the names starting with one of ``prefixes``."""
    # Every string starting with prefix sorts below prefix + U+10FFFF.
    return [(prefix, prefix + "\U0010ffff") for prefix in set(prefixes)]


def _as_prefix_if_name(probe: Probe) -> Probe:
    """An exact PatientName is looked up as a prefix: the name index is a sorted list."""
    if probe.kind == "equals" and (probe.tag, probe.vr, probe.in_sps) == PREFIX_KEY:
        return dataclasses.replace(probe, kind="prefix")
    return probe


#: :meth:`AreaIndex.export`'s values: slot -> file name, free slots, the postings of
#: EQUALS_KEYS and the dates (arrays as bytes), the sorted names and their slots.
IndexState = tuple[
    list[str | None], list[int], list[dict[str, int | bytes]], dict[str, int | bytes],
    list[str], bytes,
]  # fmt: skip


def _export_postings(postings: _Postings) -> dict[str, int | bytes]:
    return {v: s if isinstance(s, int) else s.tobytes() for v, s in postings.map.items()}


def _restore_postings(exported: dict[str, int | bytes]) -> dict[str, Posting]:
    restored: dict[str, Posting] = {}
    for value, slots in exported.items():
        if isinstance(slots, int):
            restored[value] = slots
        else:
            held = array("I")
            held.frombytes(slots)
            # Sorted again rather than trusted to be (export() writes SortedSlots in
            # order): bisection on an unsorted posting would lose slots silently.
            restored[value] = SortedSlots(held) if len(held) > LONG_POSTING else held
    return restored


class AreaIndex:
    """All entries of one area by name, in name order, and the key indexes."""

    def __init__(self) -> None:
        self.by_name: dict[str, WorklistEntry] = {}
        self._slots: list[WorklistEntry | None] = []
        self._slot_of: dict[str, int] = {}
        self._free: list[int] = []
        self._names = SortedPairs()  # file names and their slots, by name
        self._ordered: list[WorklistEntry] | None = None
        self._equals = {(tag, in_sps): _Postings() for tag, _, in_sps in EQUALS_KEYS}
        self._dates = _Postings()
        self._prefix = SortedPairs()  # PatientName values and their entries' slots

    def __len__(self) -> int:
        return len(self.by_name)

    # --- persistence (the snapshot cache, :mod:`wlmd.worklist.snapshotfile`) ----------
    def export(self) -> IndexState:
        """The index as plain values (no entries: slots are named by file name).

        Building the index costs ~20 µs per entry (decoding and splitting the
        keyed values), 2 s at 100,000 entries: a restart reads it back instead.
        """
        return (
            [None if e is None else e.name for e in self._slots],
            list(self._free),
            [_export_postings(self._equals[(tag, in_sps)]) for tag, _, in_sps in EQUALS_KEYS],
            _export_postings(self._dates),
            list(self._prefix.keys()),
            self._prefix.slots_bytes(),
        )

    @classmethod
    def restore(cls, state: IndexState, entries: dict[str, WorklistEntry]) -> AreaIndex:
        """An index of ``entries`` from :meth:`export`'s values for the same entries.

        Raises ValueError when ``state`` does not describe exactly ``entries``.
        """
        slot_names, free, equals, dates, prefix_keys, prefix_slots = state
        index = cls()
        for slot, name in enumerate(slot_names):
            if name is None:
                index._slots.append(None)
                continue
            index._slots.append(entries[name])
            index._slot_of[name] = slot
        if len(index._slot_of) != len(entries) or len(equals) != len(EQUALS_KEYS):
            raise ValueError("index does not cover the entries")
        index.by_name = {name: entries[name] for name in index._slot_of}
        names = sorted(index.by_name)
        index._names = SortedPairs(names, array("I", map(index._slot_of.__getitem__, names)))
        index._free = list(free)
        for (tag, _, in_sps), postings in zip(EQUALS_KEYS, equals, strict=True):
            index._equals[(tag, in_sps)].map = _restore_postings(postings)
        index._dates.map = _restore_postings(dates)
        slots = array("I")
        slots.frombytes(prefix_slots)
        if len(slots) != len(prefix_keys):
            raise ValueError("name index is inconsistent")
        index._prefix = SortedPairs(prefix_keys, slots)
        return index

    # --- maintenance --------------------------------------------------------------------
    def add(self, entry: WorklistEntry) -> None:
        """Add ``entry`` (replacing an entry of the same name)."""
        old = self.by_name.get(entry.name)
        if old is not None:
            self.remove(old)
        name = entry.name
        if self._free:
            slot = self._free.pop()
            self._slots[slot] = entry
        else:
            slot = len(self._slots)
            self._slots.append(entry)
        self._slot_of[name] = slot
        self.by_name[name] = entry
        self._names.insert(name, slot)
        self._ordered = None
        for tag, vr, in_sps in EQUALS_KEYS:
            postings = self._equals[(tag, in_sps)]
            for value in _key_values(entry, tag, vr, in_sps):
                postings.add(value, slot)
        for value in _key_values(entry, *DATE_KEY):
            self._dates.add(value, slot)
        for value in _key_values(entry, *PREFIX_KEY):
            self._prefix.insert(value, slot)

    def remove(self, entry: WorklistEntry) -> None:
        name = entry.name
        if self.by_name.get(name) is not entry:
            return
        slot = self._slot_of.pop(name)
        del self.by_name[name]
        self._slots[slot] = None
        self._free.append(slot)
        self._names.remove(name, slot)
        self._ordered = None
        for tag, vr, in_sps in EQUALS_KEYS:
            postings = self._equals[(tag, in_sps)]
            for value in _key_values(entry, tag, vr, in_sps):
                postings.remove(value, slot)
        for value in _key_values(entry, *DATE_KEY):
            self._dates.remove(value, slot)
        for value in _key_values(entry, *PREFIX_KEY):
            self._prefix.remove(value, slot)

    # --- lookup ------------------------------------------------------------------------
    def ordered(self) -> list[WorklistEntry]:
        """Every entry, by file name (cached until the next change)."""
        if self._ordered is None:
            by_slot = self._slots
            ordered = [by_slot[slot] for slot in self._names.slots()]
            self._ordered = [e for e in ordered if e is not None]  # each named slot is taken
        return self._ordered

    def candidates(self, probes: Iterable[Probe]) -> list[WorklistEntry] | None:
        """Entries that may match, by file name; None when no probe can narrow them.

        Starts from the probe with the fewest candidates and intersects with
        the next ones while that still pays. Each probe's postings are looked
        up once (for its size and for its slots). An intersection only keeps
        slots of the set already narrowed: ``Modality CT`` alone is an eighth
        of the area (12,500 slots at 100,000 entries), and building its set
        to ``&`` it with a two-day range (3,300) cost more than the lookups.
        """
        sized = self._sized(probes)
        if not sized:
            return None
        slots: set[int] = set()
        for posting in sized[0][2]:
            slots.update(posting)
        # "Station CT01 today" is a few entries, either condition alone thousands.
        for size, _, postings in sized[1:]:
            if len(slots) <= SMALL_ENOUGH or size > 4 * len(slots) + len(self.by_name) // 4:
                break
            kept: set[int] = set()
            for posting in postings:
                kept.update(slots.intersection(posting))
            slots = kept
        found = [self._slots[slot] for slot in slots]
        return sorted((e for e in found if e is not None), key=lambda e: e.name)

    def _sized(self, probes: Iterable[Probe]) -> list[tuple[int, int, list[Collection[int]]]]:
        """The usable probes' postings with their candidate counts, smallest first."""
        sized = []
        for n, probe in enumerate(probes):
            postings = self._postings(probe)
            if postings is not None:
                sized.append((sum(len(p) for p in postings), n, postings))
        sized.sort(key=lambda item: (item[0], item[1]))
        return sized

    def _postings(self, probe: Probe) -> list[Collection[int]] | None:
        """The slot lists whose union holds every entry ``probe`` lets through.

        None when the probe's key is not indexed (the probe cannot narrow).
        """
        probe = _as_prefix_if_name(probe)
        if probe.kind == "equals":
            postings = self._equals.get((probe.tag, probe.in_sps))
            if postings is None or probe.vr in ("PN", "DA", "TM"):
                return None  # those VRs normalise differently from the index's keys
            return [postings.slots(v) for v in set(probe.values)]
        if probe.kind == "prefix" and (probe.tag, probe.vr, probe.in_sps) == PREFIX_KEY:
            return [
                list(self._prefix.slots_between(lo, hi)) for lo, hi in _prefix_ranges(probe.values)
            ]
        if probe.kind == "date" and (probe.tag, probe.vr, probe.in_sps) == DATE_KEY:
            return [self._dates.slots(d) for d in self._matching_dates(probe.values)]
        return None

    def _matching_dates(self, queries: Iterable[str]) -> list[str]:
        """The indexed dates some query value matches (as ``values.date_match``, parsed once)."""
        wanted = [values.date_query(query) for query in queries]
        return [
            date
            for date, parsed in ((d, values.parse_date(d)) for d in self._dates.map)
            if any(query.accepts(parsed) for query in wanted)
        ]
