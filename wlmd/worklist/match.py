"""Does a worklist entry match a search mask?  PS3.4 C.2.2.2, as wlmscpfs.

Pure functions over :class:`SearchMask` and :class:`WorklistEntry`
(dcmwlm's ``DatasetMatchesSearchMask``): each non-universal matching key of
the mask must match some value of the entry; the Scheduled Procedure Step
keys must all match within one SPS item; date and time keys that come in a
pair (StudyDate/Time, SPS start date/time) are matched together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wlmd.worklist import keys, values
from wlmd.worklist.entry import WorklistEntry
from wlmd.worklist.searchmask import MaskElement, MaskNode, MaskSequence, SearchMask, find


@dataclass(frozen=True)
class MatchOptions:
    """wlmd's opt-in deviations from wlmscpfs matching (both off by default)."""

    case_insensitive_names: bool = False  # PN keys compared ignoring case
    wildcards_all_keys: bool = False  # '*'/'?' also on PatientID, Modality, station AE


@dataclass(frozen=True)
class _KeyTest:
    """One non-universal single-valued key, its query values prepared once."""

    tag: int
    vr: str
    queries: tuple[str, ...]
    wildcards: bool
    casefold: bool


@dataclass(frozen=True)
class _PairTest:
    """A date+time key pair; None where that half is absent or universal."""

    date_tag: int
    time_tag: int
    dates: tuple[str, ...] | None
    times: tuple[str, ...] | None


@dataclass(frozen=True)
class _LevelTest:
    keys: tuple[_KeyTest, ...]
    pairs: tuple[_PairTest, ...]


@dataclass(frozen=True)
class CompiledMask:
    """A search mask turned into tests, once per query: per entry only comparisons remain.

    ``sps`` is None when the Scheduled Procedure Step sequence places no
    condition (absent, empty, or universal in dcmwlm's IsUniversalMatch sense).
    """

    root: _LevelTest
    sps: tuple[_LevelTest, ...] | None

    def matches(self, entry: WorklistEntry) -> bool:
        if not _level_matches(entry.root_text, self.root):
            return False
        if self.sps is None:
            return True
        return entry.sps_text is not None and any(
            _level_matches(item, test) for test in self.sps for item in entry.sps_text
        )


def compile_mask(mask: SearchMask, options: MatchOptions) -> CompiledMask:
    """Prepare the matching of ``mask`` (split, normalise, drop universal keys)."""
    root = _compile_level(mask.nodes, keys.ROOT_MATCHING, options)
    sps: tuple[_LevelTest, ...] | None = None
    for seq_tag, level in keys.ROOT_MATCHING.sequences:
        node = find(mask.nodes, seq_tag)
        if not isinstance(node, MaskSequence) or not node.items:
            continue
        if not _sequence_is_universal(node, level):
            sps = tuple(_compile_level(item, level, options) for item in node.items)
    return CompiledMask(root, sps)


def entry_matches(entry: WorklistEntry, mask: SearchMask, options: MatchOptions) -> bool:
    """True if the entry matches every non-universal matching key of the mask.

    For many entries, compile the mask once with :func:`compile_mask` instead.
    """
    return compile_mask(mask, options).matches(entry)


def _compile_level(
    nodes: list[MaskNode], level: keys.MatchingLevel, options: MatchOptions
) -> _LevelTest:
    tests = []
    for spec in level.keys:
        query = _query_values(nodes, spec.tag)
        if query is None:
            continue
        element, queries = query
        casefold = element.vr == "PN" and options.case_insensitive_names
        if casefold:
            queries = [q.casefold() for q in queries]
        tests.append(
            _KeyTest(
                spec.tag,
                element.vr,
                tuple(queries),
                spec.wildcards or options.wildcards_all_keys,
                casefold,
            )
        )
    pairs = []
    for date_tag, time_tag in level.date_time_pairs:
        date_q = _query_values(nodes, date_tag)
        time_q = _query_values(nodes, time_tag)
        if date_q is None and time_q is None:
            continue
        pairs.append(
            _PairTest(
                date_tag,
                time_tag,
                tuple(date_q[1]) if date_q else None,
                tuple(time_q[1]) if time_q else None,
            )
        )
    return _LevelTest(tuple(tests), tuple(pairs))


def _level_matches(candidate: Mapping[int, str], level: _LevelTest) -> bool:
    for test in level.keys:
        text = candidate.get(test.tag)
        if not text:
            return False  # absent, or empty: no value to match (DCMTK: VM 0)
        if not _values_match(test, values.split_values(test.vr, text)):
            return False
    return all(_pair_matches(candidate, pair) for pair in level.pairs)


def _query_values(nodes: list[MaskNode], tag_: int) -> tuple[MaskElement, list[str]] | None:
    """The element and its values, or None when absent or universal."""
    node = find(nodes, tag_)
    if not isinstance(node, MaskElement):
        return None
    query_values = values.split_values(node.vr, node.text)
    if values.is_universal(query_values, node.vr):
        return None
    return node, query_values


def _values_match(test: _KeyTest, candidates: list[str]) -> bool:
    queries = list(test.queries)
    if test.vr == "DA":
        return values.any_value_matches(queries, candidates, values.date_match)
    if test.vr == "TM":
        return values.any_value_matches(queries, candidates, values.time_match)
    if test.casefold:
        candidates = [c.casefold() for c in candidates]
    wildcards = test.wildcards
    return values.any_value_matches(
        queries, candidates, lambda q, c: values.string_match(q, c, wildcards)
    )


def _pair_matches(candidate: Mapping[int, str], pair: _PairTest) -> bool:
    """C.2.2.2.5.1 combined matching of a date and a time key (dcmwlm combinedKeys)."""
    if pair.dates is not None:
        if pair.date_tag not in candidate:
            return False
        if pair.times is None:
            return values.any_value_matches(
                list(pair.dates),
                values.split_values("DA", candidate[pair.date_tag]),
                values.date_match,
            )
        if pair.time_tag not in candidate:
            return False
        # DCMTK: "no support for VM>1 so far" — the first values are combined.
        date_c = values.split_values("DA", candidate[pair.date_tag])[0]
        time_c = values.split_values("TM", candidate[pair.time_tag])[0]
        if not date_c:
            return False
        # An empty candidate time counts as midnight, as in DCMTK's OFDateTime.
        return values.date_time_match(pair.dates[0], pair.times[0], date_c, time_c)
    assert pair.times is not None
    text = candidate.get(pair.time_tag)
    if not text:
        return False
    return values.any_value_matches(
        list(pair.times), values.split_values("TM", text), values.time_match
    )


def _sequence_is_universal(node: MaskSequence, level: keys.MatchingLevel) -> bool:
    """dcmwlm IsUniversalMatch: here '*' counts as universal only where wildcards apply."""
    item = node.items[0]
    for spec in level.keys:
        element = find(item, spec.tag)
        if isinstance(element, MaskElement) and not _universal(element, spec.wildcards):
            return False
    for pair in level.date_time_pairs:
        for t in pair:
            element = find(item, t)
            if isinstance(element, MaskElement) and not _universal(element, False):
                return False
    return True


def _universal(element: MaskElement, wildcards: bool) -> bool:
    parts = values.split_values(element.vr, element.text)
    if all(not p for p in parts):
        return True
    return wildcards and values.is_universal(parts, element.vr)


# --- what an index may answer ---------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """A necessary condition of a compiled mask that an index can look up.

    An entry can only match if some value of key ``tag`` (in the root, or in
    some Scheduled Procedure Step item when ``in_sps``) is one of ``values``
    (``kind == "equals"``), starts with one of them (``"prefix"``), or is a
    date ``values`` match (``"date"``). The full matcher still decides: a
    probe may let through entries that do not match, never keep out one that
    does.
    """

    tag: int
    vr: str
    in_sps: bool
    kind: str
    values: tuple[str, ...]


def probes(compiled: CompiledMask) -> list[Probe]:
    """The conditions of ``compiled`` an index could narrow the candidates with."""
    found = [p for test in compiled.root.keys if (p := _probe(test, False)) is not None]
    if compiled.sps is not None and len(compiled.sps) == 1:
        level = compiled.sps[0]
        found += [p for test in level.keys if (p := _probe(test, True)) is not None]
        for pair in level.pairs:
            if pair.dates and all(pair.dates):
                found.append(Probe(pair.date_tag, "DA", True, "date", pair.dates))
    return found


def _probe(test: _KeyTest, in_sps: bool) -> Probe | None:
    if test.casefold or test.vr in ("DA", "TM") or not all(test.queries):
        return None  # an empty query value matches any value: nothing to narrow
    if not test.wildcards or not any("*" in q or "?" in q for q in test.queries):
        # Without a wildcard character, wildcard matching is equality.
        return Probe(test.tag, test.vr, in_sps, "equals", test.queries)
    prefixes = []
    for query in test.queries:
        cut = min((i for i, ch in enumerate(query) if ch in "*?"), default=len(query))
        if cut == 0:
            return None
        prefixes.append(query[:cut])
    return Probe(test.tag, test.vr, in_sps, "prefix", tuple(prefixes))
