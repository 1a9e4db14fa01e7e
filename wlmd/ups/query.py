"""UPS C-FIND: matching (PS3.4 C.2.2.2, CC.2.8) and the response identifier.

The path of one query: ``parse_query`` (request identifier -> mask nodes,
unsupported and invalid keys) -> ``UpsQuery.narrowing`` (conditions the store
can answer from its indexed columns; they may only narrow) -> the store's
candidates -> ``UpsQuery.matches`` (the decision: the MWL matcher's
single-value, wildcard, UID-list and DA/TM/DT range tests, on the UPS key
table derived from ``attributes.RULES``) -> ``build_response``.

Sequence matching (C.2.2.2.6): a code sequence key with an item of
non-universal keys matches when some item of the step's sequence matches
all of them; nested sequences (the performer's code) likewise.

Response (C.2.2.1.2, CC.2.8.3): every key asked for that UPS defines or the
step holds, with the step's value or empty; keys UPS does not define are
left out and make the pending status 0xFF01; the Transaction UID is never
returned (CC.2.7.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from wlmd.ups import attributes, table
from wlmd.ups.table import BY_TAG, RULES, Rule
from wlmd.worklist import keys, match, values
from wlmd.worklist.searchmask import MaskElement, MaskNode, MaskSequence, find

#: String VRs where '*' and '?' are wildcards (C.2.2.2.4); not UI, dates, numbers.
WILDCARD_VRS = frozenset({"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})


@dataclass(frozen=True)
class Level:
    """The matching keys of one data set level and its matchable sequences."""

    keys: keys.MatchingLevel
    sequences: tuple[tuple[int, Level], ...]
    #: Tags that may be returned at this level (None: anything the step holds).
    returnable: frozenset[int] | None


def _level(rules: Iterable[Rule]) -> Level:
    rules = tuple(rules)
    spec = tuple(
        keys.KeySpec(r.tag, wildcards=r.vr in WILDCARD_VRS)
        for r in rules
        if r.match and r.vr != "SQ"
    )
    sequences = tuple((r.tag, _level(r.children)) for r in rules if r.match and r.vr == "SQ")
    return Level(keys.MatchingLevel(spec, (), ()), sequences, frozenset(r.tag for r in rules))


ROOT = _level(RULES)
#: Return keys inside sequences whose items the table does not list: as stored.
_OPEN = Level(keys.MatchingLevel((), (), ()), (), None)


def _child_level(level: Level, tag: int) -> Level:
    for seq_tag, child in level.sequences:
        if seq_tag == tag:
            return child
    rule = BY_TAG.get(tag)
    if rule is not None and rule.children:
        return _level(rule.children)
    return _OPEN


@dataclass(frozen=True)
class _ItemTest:
    level: match.LevelTest
    sequences: tuple[tuple[int, tuple[_ItemTest, ...]], ...]

    def matches(self, item: Dataset, level: Level) -> bool:
        if not match.level_matches(_TextOf(item), self.level):
            return False
        for seq_tag, tests in self.sequences:
            child = _child_level(level, seq_tag)
            items = item[seq_tag].value if seq_tag in item else []
            if not any(t.matches(i, child) for t in tests for i in items):
                return False
        return True


class _TextOf(Mapping[int, str]):
    """One level of a stored step as the matcher reads it: tag -> text (absent: missing)."""

    def __init__(self, ds: Dataset) -> None:
        self._ds = ds

    def __getitem__(self, t: int) -> str:
        if t not in self._ds:
            raise KeyError(t)
        return attributes.text(self._ds, t)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (e.tag for e in self._ds)

    def __len__(self) -> int:
        return len(self._ds)


@dataclass(frozen=True)
class Narrowing:
    """Necessary conditions the store checks on its indexed columns (None: any)."""

    states: tuple[str, ...] | None = None
    uids: tuple[str, ...] | None = None
    start_low: str | None = None  # ScheduledProcedureStepStartDateTime, 14 digits
    start_high: str | None = None
    worklist_labels: tuple[str, ...] | None = None
    patient_ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class UpsQuery:
    """A checked C-FIND identifier, compiled once."""

    request: Dataset
    test: _ItemTest
    narrowing: Narrowing
    #: Keys UPS does not define, or values on keys it does not match (-> 0xFF01).
    unsupported: tuple[int, ...]
    #: Keys whose query value is not valid for its VR (-> 0xA900, Offending Element).
    invalid: tuple[int, ...]

    def matches(self, ds: Dataset) -> bool:
        return self.test.matches(ds, ROOT)


def mask_nodes(ds: Dataset) -> list[MaskNode]:
    """A request identifier as the MWL matcher's mask nodes (values decoded by pydicom)."""
    nodes: list[MaskNode] = []
    for element in ds:
        if element.VR == "SQ":
            nodes.append(MaskSequence(element.tag, [mask_nodes(i) for i in element.value]))
        else:
            nodes.append(
                MaskElement(element.tag, str(element.VR), attributes.text(ds, element.tag))
            )
    return nodes


def parse_query(identifier: Dataset) -> UpsQuery:
    """Check and compile a UPS C-FIND identifier (never raises on bad values)."""
    nodes = mask_nodes(identifier)
    unsupported: list[int] = []
    invalid: list[int] = []
    _survey(nodes, ROOT, unsupported, invalid, top=True)
    test = _compile(nodes, ROOT)
    return UpsQuery(identifier, test, _narrowing(nodes), tuple(unsupported), tuple(invalid))


def _survey(
    nodes: list[MaskNode], level: Level, unsupported: list[int], invalid: list[int], top: bool
) -> None:
    matching = {s.tag for s in level.keys.keys}
    for node in nodes:
        if node.tag in (table.SPECIFIC_CHARACTER_SET, table.TRANSACTION_UID):
            continue  # decoding only; never matched nor returned
        if top and level.returnable is not None and node.tag not in level.returnable:
            unsupported.append(node.tag)
            continue
        if isinstance(node, MaskSequence):
            child = _child_level(level, node.tag)
            for item in node.items:
                _survey(item, child, unsupported, invalid, top=False)
            continue
        if not node.text or values.is_universal(values.split_values(node.vr, node.text), node.vr):
            continue
        if node.tag not in matching:
            unsupported.append(node.tag)
        elif node.vr in RANGE_VRS and not _valid_range(node.vr, node.text):
            invalid.append(node.tag)


def _valid_range(vr: str, text: str) -> bool:
    parse = {"DA": values.parse_date, "TM": values.parse_time, "DT": values.parse_datetime}[vr]
    for part in text.split("\\"):
        low, sep, high = part.partition("-")
        if (low and parse(low) is None) or (sep and high and parse(high) is None):
            return False
        if not low and not (sep and high):
            return False
    return True


def _compile(nodes: list[MaskNode], level: Level) -> _ItemTest:
    sequences = []
    for seq_tag, child in level.sequences:
        node = find(nodes, seq_tag)
        if not isinstance(node, MaskSequence) or not node.items:
            continue
        tests = tuple(_compile(item, child) for item in node.items)
        if all(_universal(t) for t in tests):
            continue  # C.2.2.2.6: an item of universal keys places no condition
        sequences.append((seq_tag, tests))
    return _ItemTest(match.compile_level(nodes, level.keys), tuple(sequences))


def _universal(test: _ItemTest) -> bool:
    return match.level_is_universal(test.level) and not test.sequences


def _single_values(nodes: list[MaskNode], keyword: str) -> tuple[str, ...] | None:
    """The literal values of a key (no wildcard, not universal), or None."""
    node = find(nodes, table.tag(keyword))
    if not isinstance(node, MaskElement) or not node.text:
        return None
    parts = values.split_values(node.vr, node.text)
    if any(not p or "*" in p or "?" in p for p in parts):
        return None
    return tuple(parts)


def _narrowing(nodes: list[MaskNode]) -> Narrowing:
    low = high = None
    start = find(nodes, table.tag("ScheduledProcedureStepStartDateTime"))
    if isinstance(start, MaskElement) and start.text and "\\" not in start.text:
        first, sep, second = start.text.partition("-")
        low = index_datetime(first, "0") if first else None
        high = index_datetime(second if sep else first, "9") if (second or not sep) else None
    return Narrowing(
        states=_single_values(nodes, "ProcedureStepState"),
        uids=_single_values(nodes, "SOPInstanceUID"),
        start_low=low,
        start_high=high,
        worklist_labels=_single_values(nodes, "WorklistLabel"),
        patient_ids=_single_values(nodes, "PatientID"),
    )


def index_datetime(value: str, pad: str = "0") -> str:
    """A DT as the store indexes it: the first 14 digits, shorter ones padded.

    Stored values are padded with "0"; a query's upper bound with "9", so the
    indexed range always holds every value the matcher accepts (it decides).
    """
    digits = value.strip(" ").split(".")[0]
    for sign in "+-":
        cut = digits.find(sign, 4)
        if cut != -1:
            digits = digits[:cut]
    return (digits[:14] + pad * 14)[:14]


def build_response(ds: Dataset, query: UpsQuery) -> Dataset:
    """The identifier of one pending response for the step ``ds``."""
    out = _respond(ds, query.request, ROOT)
    if table.SPECIFIC_CHARACTER_SET in ds:
        out[table.SPECIFIC_CHARACTER_SET] = ds[table.SPECIFIC_CHARACTER_SET]
    return out


def _respond(ds: Dataset, request: Dataset, level: Level) -> Dataset:
    out = Dataset()
    for element in request:
        t = element.tag
        if t in (table.TRANSACTION_UID, table.SPECIFIC_CHARACTER_SET):
            continue
        if level.returnable is not None and t not in level.returnable and t not in ds:
            continue
        if t not in ds:
            out.add(attributes.empty_element(t) if attributes.known_tag(t) else element)
            continue
        stored = ds[t]
        if stored.VR == "SQ" and element.VR == "SQ" and len(element.value) > 0:
            child = _child_level(level, t)
            shape = element.value[0]
            out.add_new(t, "SQ", Sequence([_respond(i, shape, child) for i in stored.value]))
        else:
            out[t] = stored
    return out
