"""Does a worklist entry match a search mask?  PS3.4 C.2.2.2, as wlmscpfs.

Pure functions over :class:`SearchMask` and :class:`WorklistEntry`
(dcmwlm's ``DatasetMatchesSearchMask``): each non-universal matching key of
the mask must match some value of the entry; the Scheduled Procedure Step
keys must all match within one SPS item; date and time keys that come in a
pair (StudyDate/Time, SPS start date/time) are matched together.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

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
    """One non-universal single-valued key, its query values prepared once.

    ``accepts`` tells whether one normalised candidate value matches some
    query value: date/time bounds parsed, wildcard patterns compiled and the
    literal values put in a set when the mask is compiled, not per candidate.
    """

    tag: int
    vr: str
    queries: tuple[str, ...]
    wildcards: bool
    casefold: bool
    accepts: Callable[[str], bool] = field(compare=False, repr=False)


@dataclass(frozen=True)
class _PairTest:
    """A date+time key pair; None where that half is absent or universal.

    ``date_alone``/``time_alone`` (one half given) and ``combined`` (both)
    are the query values parsed once (C.2.2.2.5).
    """

    date_tag: int
    time_tag: int
    dates: tuple[str, ...] | None
    times: tuple[str, ...] | None
    date_alone: Callable[[str], bool] | None = field(default=None, compare=False, repr=False)
    time_alone: Callable[[str], bool] | None = field(default=None, compare=False, repr=False)
    combined: values.DateTimeQuery | None = field(default=None, compare=False, repr=False)


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
        # A root level without tests (Modality + date: only SPS keys) accepts every
        # entry: its text view is not even built, per candidate of a large answer.
        if (self.root.keys or self.root.pairs) and not _level_matches(entry.root_text, self.root):
            return False
        if self.sps is None:
            return True
        items = entry.sps_text  # built once per candidate, not per SPS test
        if items is None:
            return False
        for test in self.sps:  # loops, not any() over a generator: run per candidate
            for item in items:
                if _level_matches(item, test):
                    return True
        return False


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
        wildcards = spec.wildcards or options.wildcards_all_keys
        tests.append(
            _KeyTest(
                spec.tag,
                element.vr,
                tuple(queries),
                wildcards,
                casefold,
                _value_test(element.vr, queries, wildcards),
            )
        )
    pairs = []
    for date_tag, time_tag in level.date_time_pairs:
        date_q = _query_values(nodes, date_tag)
        time_q = _query_values(nodes, time_tag)
        if date_q is None and time_q is None:
            continue
        dates = tuple(date_q[1]) if date_q else None
        times = tuple(time_q[1]) if time_q else None
        pairs.append(
            _PairTest(
                date_tag,
                time_tag,
                dates,
                times,
                _value_test("DA", list(dates), False) if dates is not None else None,
                _value_test("TM", list(times), False) if times is not None else None,
                # DCMTK: "no support for VM>1 so far" — the first values are combined.
                values.DateTimeQuery(dates[0], times[0]) if dates and times else None,
            )
        )
    return _LevelTest(tuple(tests), tuple(pairs))


#: Range-matched VRs (C.2.2.2.5) and how their values are parsed; DT only in UPS keys.
_PARSERS: dict[str, Callable[[str], object]] = {
    "DA": values.parse_date,
    "TM": values.parse_time,
    "DT": values.parse_datetime,
}


def _value_test(vr: str, queries: list[str], wildcards: bool) -> Callable[[str], bool]:
    """Whether one candidate value matches some of ``queries`` (C.2.2.2.1-C.2.2.2.5).

    The same decisions as :func:`values.any_value_matches` with
    :func:`values.date_match`, :func:`values.time_match` or
    :func:`values.string_match`, prepared once per query: an empty query
    value matches everything; a DA/TM value is a single value or a range;
    a string is compared literally, or as a wildcard pattern where the key
    allows '*' and '?' (a pattern without them is a literal).
    """
    if any(not q for q in queries):
        return lambda _candidate: True
    if vr in _PARSERS:
        parse = _PARSERS[vr]
        ranges = [values.RangeQuery(q, parse) for q in queries]
        if len(ranges) == 1:
            only = ranges[0]
            return lambda candidate: only.accepts(parse(candidate))
        return lambda candidate: any(r.accepts(parse(candidate)) for r in ranges)
    literal = frozenset(q for q in queries if not wildcards or ("*" not in q and "?" not in q))
    patterns = [values.wildcard_regex(q) for q in queries if q not in literal]
    if not patterns:
        return literal.__contains__
    return lambda candidate: (
        candidate in literal or any(p.fullmatch(candidate) is not None for p in patterns)
    )


def _level_matches(candidate: Mapping[int, str], level: _LevelTest) -> bool:
    for test in level.keys:
        text = candidate.get(test.tag)
        if not text:
            return False  # absent, or empty: no value to match (DCMTK: VM 0)
        if not _any_value(test.accepts, test.vr, text, test.casefold):
            return False
    for pair in level.pairs:  # noqa: SIM110 - a loop: all() over a generator costs per candidate
        if not _pair_matches(candidate, pair):
            return False
    return True


def _any_value(accepts: Callable[[str], bool], vr: str, text: str, casefold: bool) -> bool:
    """Multi-valued matching: some value of the candidate ``text`` is accepted."""
    if "\\" not in text:  # one value, the usual case: no list to build
        value = values.normalize(vr, text)
        return accepts(value.casefold() if casefold else value)
    candidates = values.split_values(vr, text)
    if casefold:
        candidates = [c.casefold() for c in candidates]
    return any(accepts(c) for c in candidates)


def _query_values(nodes: list[MaskNode], tag_: int) -> tuple[MaskElement, list[str]] | None:
    """The element and its values, or None when absent or universal."""
    node = find(nodes, tag_)
    if not isinstance(node, MaskElement):
        return None
    query_values = values.split_values(node.vr, node.text)
    if values.is_universal(query_values, node.vr):
        return None
    return node, query_values


def _pair_matches(candidate: Mapping[int, str], pair: _PairTest) -> bool:
    """C.2.2.2.5.1 combined matching of a date and a time key (dcmwlm combinedKeys)."""
    if pair.dates is not None:
        # get() once, not ``in`` then ``[]``: each decodes the entry's value.
        date_text = candidate.get(pair.date_tag)
        if date_text is None:
            return False
        if pair.combined is None:
            assert pair.date_alone is not None
            return _any_value(pair.date_alone, "DA", date_text, False)
        time_text = candidate.get(pair.time_tag)
        if time_text is None:
            return False
        # DCMTK: "no support for VM>1 so far" — the first values are combined.
        date_c = values.split_values("DA", date_text)[0]
        time_c = values.split_values("TM", time_text)[0]
        if not date_c:
            return False
        # An empty candidate time counts as midnight, as in DCMTK's OFDateTime.
        return pair.combined.accepts(date_c, time_c)
    assert pair.time_alone is not None
    text = candidate.get(pair.time_tag)
    if not text:
        return False
    return _any_value(pair.time_alone, "TM", text, False)


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


# --- one level on its own (UPS: wlmd/ups/query.py) ---------------------------------

#: One dataset level's compiled keys (what :func:`compile_level` returns).
LevelTest = _LevelTest


def compile_level(
    nodes: list[MaskNode], level: keys.MatchingLevel, options: MatchOptions | None = None
) -> LevelTest:
    """The tests of one level of a mask against ``level``'s keys, universal keys dropped.

    The MWL matcher's own building block, for a data source with other key
    tables (UPS): the same single-value, wildcard, list-of-UID and DA/TM/DT
    range matching (PS3.4 C.2.2.2.1-C.2.2.2.5).
    """
    return _compile_level(nodes, level, options or MatchOptions())


def level_matches(candidate: Mapping[int, str], test: LevelTest) -> bool:
    """Whether one level of a candidate (tag -> text) passes every test of ``test``."""
    return _level_matches(candidate, test)


def level_is_universal(test: LevelTest) -> bool:
    """True when ``test`` places no condition (every key was universal)."""
    return not test.keys and not test.pairs


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
    if test.casefold or test.vr in _PARSERS or not all(test.queries):
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
