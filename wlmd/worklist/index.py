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

Memory: names (the entries' file names, shared strings) rather than entry
objects, and a set only where a value has more than one entry.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable

from wlmd.worklist import keys, values
from wlmd.worklist.entry import WorklistEntry
from wlmd.worklist.match import Probe

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


class _MultiMap:
    """value -> file name(s); a lone name is stored as a str, several as a set."""

    def __init__(self) -> None:
        self.map: dict[str, str | set[str]] = {}

    def add(self, value: str, name: str) -> None:
        held = self.map.get(value)
        if held is None:
            self.map[value] = name
        elif isinstance(held, set):
            held.add(name)
        elif held != name:
            self.map[value] = {held, name}

    def remove(self, value: str, name: str) -> None:
        held = self.map.get(value)
        if held is None:
            return
        if isinstance(held, set):
            held.discard(name)
            if len(held) == 1:
                self.map[value] = next(iter(held))
        elif held == name:
            del self.map[value]

    def count(self, value: str) -> int:
        held = self.map.get(value)
        if held is None:
            return 0
        return len(held) if isinstance(held, set) else 1

    def names(self, value: str) -> Iterable[str]:
        held = self.map.get(value)
        if held is None:
            return ()
        return held if isinstance(held, set) else (held,)


def _key_values(entry: WorklistEntry, tag: int, vr: str, in_sps: bool) -> set[str]:
    texts: list[str] = []
    if in_sps:
        texts = [item[tag] for item in entry.sps_text or () if item.get(tag)]
    elif entry.root_text.get(tag):
        texts = [entry.root_text[tag]]
    return {v for text in texts for v in values.split_values(vr, text) if v}


def _as_prefix_if_name(probe: Probe) -> Probe:
    """An exact PatientName is looked up as a prefix: the name index is a sorted list."""
    if probe.kind == "equals" and (probe.tag, probe.vr, probe.in_sps) == PREFIX_KEY:
        return dataclasses.replace(probe, kind="prefix")
    return probe


class AreaIndex:
    """All entries of one area by name, in name order, and the key indexes."""

    def __init__(self) -> None:
        self.by_name: dict[str, WorklistEntry] = {}
        self._names: list[str] = []  # sorted
        self._ordered: list[WorklistEntry] | None = None
        self._equals = {(tag, in_sps): _MultiMap() for tag, _, in_sps in EQUALS_KEYS}
        self._dates = _MultiMap()
        self._prefix_keys: list[str] = []  # sorted PatientName values ...
        self._prefix_names: list[str] = []  # ... and their file names, in step

    def __len__(self) -> int:
        return len(self.by_name)

    # --- maintenance --------------------------------------------------------------------
    def add(self, entry: WorklistEntry) -> None:
        """Add ``entry`` (replacing an entry of the same name)."""
        old = self.by_name.get(entry.name)
        if old is not None:
            self.remove(old)
        name = entry.name
        self.by_name[name] = entry
        bisect.insort(self._names, name)
        self._ordered = None
        for tag, vr, in_sps in EQUALS_KEYS:
            index = self._equals[(tag, in_sps)]
            for value in _key_values(entry, tag, vr, in_sps):
                index.add(value, name)
        for value in _key_values(entry, *DATE_KEY):
            self._dates.add(value, name)
        for value in _key_values(entry, *PREFIX_KEY):
            at = bisect.bisect_left(self._prefix_keys, value)
            self._prefix_keys.insert(at, value)
            self._prefix_names.insert(at, name)

    def remove(self, entry: WorklistEntry) -> None:
        name = entry.name
        if self.by_name.get(name) is not entry:
            return
        del self.by_name[name]
        at = bisect.bisect_left(self._names, name)
        if at < len(self._names) and self._names[at] == name:
            del self._names[at]
        self._ordered = None
        for tag, vr, in_sps in EQUALS_KEYS:
            index = self._equals[(tag, in_sps)]
            for value in _key_values(entry, tag, vr, in_sps):
                index.remove(value, name)
        for value in _key_values(entry, *DATE_KEY):
            self._dates.remove(value, name)
        for value in _key_values(entry, *PREFIX_KEY):
            at = bisect.bisect_left(self._prefix_keys, value)
            while at < len(self._prefix_keys) and self._prefix_keys[at] == value:
                if self._prefix_names[at] == name:
                    del self._prefix_keys[at]
                    del self._prefix_names[at]
                    break
                at += 1

    # --- lookup ------------------------------------------------------------------------
    def ordered(self) -> list[WorklistEntry]:
        """Every entry, by file name (cached until the next change)."""
        if self._ordered is None:
            self._ordered = [self.by_name[name] for name in self._names]
        return self._ordered

    def candidates(self, probes: Iterable[Probe]) -> list[WorklistEntry] | None:
        """Entries that may match, by file name; None when no probe can narrow them.

        The probe with the fewest candidates is used; the matcher checks the rest.
        """
        sized = self._sized(probes)
        if not sized:
            return None
        names = self._names_for(sized[0][2])
        # Intersect with the next smallest while that still pays: "station CT01 today"
        # is a few entries, while either condition alone may be thousands.
        for size, _, probe in sized[1:]:
            if len(names) <= SMALL_ENOUGH or size > 4 * len(names) + len(self.by_name) // 4:
                break
            names &= self._names_for(probe)
        return [self.by_name[name] for name in sorted(names)]

    def _sized(self, probes: Iterable[Probe]) -> list[tuple[int, int, Probe]]:
        """The usable probes with their estimated candidate counts, smallest first."""
        sized = []
        for n, probe in enumerate(probes):
            size = self._estimate(probe)
            if size is not None:
                sized.append((size, n, probe))
        sized.sort(key=lambda item: (item[0], item[1]))
        return sized

    def _estimate(self, probe: Probe) -> int | None:
        probe = _as_prefix_if_name(probe)
        if probe.kind == "equals":
            index = self._equals.get((probe.tag, probe.in_sps))
            if index is None or probe.vr in ("PN", "DA", "TM"):
                return None  # those VRs normalise differently from the index's keys
            return sum(index.count(v) for v in set(probe.values))
        if probe.kind == "prefix" and (probe.tag, probe.vr, probe.in_sps) == PREFIX_KEY:
            return sum(hi - lo for lo, hi in self._prefix_ranges(probe.values))
        if probe.kind == "date" and (probe.tag, probe.vr, probe.in_sps) == DATE_KEY:
            return sum(self._dates.count(d) for d in self._matching_dates(probe.values))
        return None

    def _names_for(self, probe: Probe) -> set[str]:
        probe = _as_prefix_if_name(probe)
        found: set[str] = set()
        if probe.kind == "equals":
            index = self._equals[(probe.tag, probe.in_sps)]
            for value in set(probe.values):
                found.update(index.names(value))
        elif probe.kind == "prefix":
            for lo, hi in self._prefix_ranges(probe.values):
                found.update(self._prefix_names[lo:hi])
        else:
            for date in self._matching_dates(probe.values):
                found.update(self._dates.names(date))
        return found

    def _prefix_ranges(self, prefixes: Iterable[str]) -> list[tuple[int, int]]:
        ranges = []
        for prefix in set(prefixes):
            lo = bisect.bisect_left(self._prefix_keys, prefix)
            # Every string starting with prefix sorts below prefix + U+10FFFF.
            hi = bisect.bisect_left(self._prefix_keys, prefix + "\U0010ffff", lo)
            ranges.append((lo, hi))
        return ranges

    def _matching_dates(self, queries: Iterable[str]) -> list[str]:
        wanted = list(queries)
        return [
            date
            for date in self._dates.map
            if any(values.date_match(query, date) for query in wanted)
        ]
