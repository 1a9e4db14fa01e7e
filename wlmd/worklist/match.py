"""Does a worklist entry match a search mask?  PS3.4 C.2.2.2, as wlmscpfs.

Pure functions over :class:`SearchMask` and :class:`WorklistEntry`
(dcmwlm's ``DatasetMatchesSearchMask``): each non-universal matching key of
the mask must match some value of the entry; the Scheduled Procedure Step
keys must all match within one SPS item; date and time keys that come in a
pair (StudyDate/Time, SPS start date/time) are matched together.
"""

from __future__ import annotations

from dataclasses import dataclass

from wlmd.worklist import keys, values
from wlmd.worklist.entry import WorklistEntry
from wlmd.worklist.searchmask import MaskElement, MaskNode, MaskSequence, SearchMask, find


@dataclass(frozen=True)
class MatchOptions:
    """wlmd's opt-in deviations from wlmscpfs matching (both off by default)."""

    case_insensitive_names: bool = False  # PN keys compared ignoring case
    wildcards_all_keys: bool = False  # '*'/'?' also on PatientID, Modality, station AE


def entry_matches(entry: WorklistEntry, mask: SearchMask, options: MatchOptions) -> bool:
    """True if the entry matches every non-universal matching key of the mask."""
    if not _level_matches(entry.root_text, mask.nodes, keys.ROOT_MATCHING, options):
        return False
    for seq_tag, level in keys.ROOT_MATCHING.sequences:
        node = find(mask.nodes, seq_tag)
        if not isinstance(node, MaskSequence) or not node.items:
            continue
        if _sequence_is_universal(node, level):
            continue
        if entry.sps_text is None or not any(
            _level_matches(item, query_item, level, options)
            for query_item in node.items
            for item in entry.sps_text
        ):
            return False
    return True


def _level_matches(
    candidate: dict[int, str],
    nodes: list[MaskNode],
    level: keys.MatchingLevel,
    options: MatchOptions,
) -> bool:
    for spec in level.keys:
        query = _query_values(nodes, spec.tag)
        if query is None:
            continue
        element, query_values = query
        if spec.tag not in candidate:
            return False
        wildcards = spec.wildcards or options.wildcards_all_keys
        if not _values_match(element.vr, query_values, candidate[spec.tag], wildcards, options):
            return False
    for date_tag, time_tag in level.date_time_pairs:
        if not _date_time_pair_matches(candidate, nodes, date_tag, time_tag):
            return False
    return True


def _query_values(nodes: list[MaskNode], tag_: int) -> tuple[MaskElement, list[str]] | None:
    """The element and its values, or None when absent or universal."""
    node = find(nodes, tag_)
    if not isinstance(node, MaskElement):
        return None
    query_values = values.split_values(node.vr, node.text)
    if values.is_universal(query_values, node.vr):
        return None
    return node, query_values


def _values_match(
    vr: str, query: list[str], candidate_text: str, wildcards: bool, options: MatchOptions
) -> bool:
    candidates = values.split_values(vr, candidate_text)
    if not candidate_text:
        return False  # an empty candidate has no value to match (DCMTK: VM 0)
    if vr == "DA":
        return values.any_value_matches(query, candidates, values.date_match)
    if vr == "TM":
        return values.any_value_matches(query, candidates, values.time_match)
    if vr == "PN" and options.case_insensitive_names:
        query = [q.casefold() for q in query]
        candidates = [c.casefold() for c in candidates]
    return values.any_value_matches(
        query, candidates, lambda q, c: values.string_match(q, c, wildcards)
    )


def _date_time_pair_matches(
    candidate: dict[int, str], nodes: list[MaskNode], date_tag: int, time_tag: int
) -> bool:
    """C.2.2.2.5.1 combined matching of a date and a time key (dcmwlm combinedKeys)."""
    date_q = _query_values(nodes, date_tag)
    time_q = _query_values(nodes, time_tag)
    if date_q is not None:
        if date_tag not in candidate:
            return False
        if time_q is None:
            return values.any_value_matches(
                date_q[1], values.split_values("DA", candidate[date_tag]), values.date_match
            )
        if time_tag not in candidate:
            return False
        # DCMTK: "no support for VM>1 so far" — the first values are combined.
        date_c = values.split_values("DA", candidate[date_tag])[0]
        time_c = values.split_values("TM", candidate[time_tag])[0]
        if not date_c:
            return False
        # An empty candidate time counts as midnight, as in DCMTK's OFDateTime.
        return values.date_time_match(date_q[1][0], time_q[1][0], date_c, time_c)
    if time_q is not None:
        if time_tag not in candidate or not candidate[time_tag]:
            return False
        return values.any_value_matches(
            time_q[1], values.split_values("TM", candidate[time_tag]), values.time_match
        )
    return True


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
