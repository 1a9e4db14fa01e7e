"""Building the C-FIND response identifier for one matching entry (PS3.4 K.6).

As wlmscpfs: the response has exactly the attributes of the (cleaned and
expanded) search mask, each filled with the entry's value (empty when the
entry lacks it); sequences get one response item per item in the entry;
empty code and reference sequences are cleaned up; the Specific Character
Set is added per ``-cs0``/``-cs1``/``-csk``. Pure: no I/O.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from wlmd.settings.config import ReturnCharset
from wlmd.worklist import keys
from wlmd.worklist.entry import Item, WorklistEntry
from wlmd.worklist.searchmask import MaskElement, MaskNode, MaskSequence, SearchMask, find


@dataclass(slots=True)
class ResponseElement:
    tag: int
    vr: str
    value: bytes


@dataclass(slots=True)
class ResponseSequence:
    tag: int
    items: list[list[ResponseNode]] = field(default_factory=list)


ResponseNode = ResponseElement | ResponseSequence

# How one mask node is answered (the kinds of a plan step).
ELEMENT = 0  # the entry's value, empty when absent
PREGNANCY = 1  # top-level PregnancyStatus: the entry's number, "unknown" when absent
SEQUENCE = 2  # one item per entry item, shaped like the mask's single item
ECHO = 3  # a mask sequence without exactly one item: returned as it came

#: (kind, tag, VR, sub-plan of a sequence's item, the mask's items to echo)
Step = tuple[int, int, str, "tuple[Step, ...]", list[list[MaskNode]]]


class ResponsePlan:
    """The response shape of one search mask, worked out once per query.

    Walking the mask (node types, the PregnancyStatus special case, which
    cleanups and charset checks can apply at all) is the same for every
    matching entry; per entry only the values are looked up.
    """

    def __init__(self, mask: SearchMask) -> None:
        self.steps = _plan_level(mask.nodes, top=True)
        sps = find(mask.nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        self.sps_codes = isinstance(sps, MaskSequence) and any(
            _mentions(item, keys.SPS_DESCRIPTION, keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE)
            for item in sps.items
        )
        self.root_codes = _mentions(
            mask.nodes, keys.REQUESTED_PROCEDURE_DESCRIPTION, keys.REQUESTED_PROCEDURE_CODE_SEQUENCE
        )
        self.references = _mentions(
            mask.nodes, keys.REFERENCED_STUDY_SEQUENCE, keys.REFERENCED_PATIENT_SEQUENCE
        )
        #: A response has only the mask's VRs: without one the charset affects, none can need it.
        self.charset_may_matter = _affected_by_charset(echo_nodes(mask.nodes))

    def build(self, entry: WorklistEntry, return_charset: ReturnCharset) -> list[ResponseNode]:
        """The response identifier for ``entry``, as a tag-ordered list of nodes."""
        nodes = _fill_level(self.steps, entry.elements, entry)
        if self.sps_codes:
            sps = find(nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
            if isinstance(sps, ResponseSequence) and sps.items:
                _clean_description_and_codes(
                    sps.items[0], keys.SPS_DESCRIPTION, keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE
                )
        if self.root_codes:
            _clean_description_and_codes(
                nodes, keys.REQUESTED_PROCEDURE_DESCRIPTION, keys.REQUESTED_PROCEDURE_CODE_SEQUENCE
            )
        if self.references:
            for t in (keys.REFERENCED_STUDY_SEQUENCE, keys.REFERENCED_PATIENT_SEQUENCE):
                _clean_reference_sequence(nodes, t)
        charset = declared_charset(entry, return_charset)
        if charset and self.charset_may_matter and _affected_by_charset(nodes):
            nodes.insert(0, ResponseElement(keys.SPECIFIC_CHARACTER_SET, "CS", charset.encode()))
        return nodes


def build_response(
    entry: WorklistEntry, mask: SearchMask, return_charset: ReturnCharset
) -> list[ResponseNode]:
    """The response identifier for ``entry``, as a tag-ordered list of nodes.

    For many entries, plan the mask once with :class:`ResponsePlan` instead.
    """
    return ResponsePlan(mask).build(entry, return_charset)


def _mentions(nodes: list[MaskNode], *tags: int) -> bool:
    return any(node.tag in tags for node in nodes)


def _plan_level(mask_nodes: list[MaskNode], top: bool) -> tuple[Step, ...]:
    steps: list[Step] = []
    for node in mask_nodes:
        if isinstance(node, MaskElement):
            kind = PREGNANCY if top and node.tag == keys.PREGNANCY_STATUS else ELEMENT
            steps.append((kind, node.tag, node.vr, (), []))
        elif len(node.items) != 1:
            steps.append((ECHO, node.tag, "SQ", (), node.items))
        else:
            steps.append(
                (SEQUENCE, node.tag, "SQ", _plan_level(node.items[0], top=False), node.items)
            )
    return tuple(steps)


def _fill_level(steps: tuple[Step, ...], source: Item, entry: WorklistEntry) -> list[ResponseNode]:
    out: list[ResponseNode] = []
    get = source.get
    for kind, tag, vr, sub, mask_items in steps:
        if kind == ELEMENT:
            value = get(tag)
            out.append(ResponseElement(tag, vr, value if isinstance(value, bytes) else b""))
        elif kind == SEQUENCE:
            out.append(_fill_sequence(tag, sub, mask_items[0], get(tag), entry))
        elif kind == ECHO:
            out.append(ResponseSequence(tag, [echo_nodes(item) for item in mask_items]))
        else:
            out.append(ResponseElement(tag, vr, pregnancy_value(vr, entry)))
    return out


def pregnancy_value(vr: str, entry: WorklistEntry) -> bytes:
    status = entry.pregnancy_status
    number = keys.PREGNANCY_STATUS_UNKNOWN if status is None else status
    return struct.pack("<H", number & 0xFFFF) if vr == "US" else str(number).encode()


def _fill_sequence(
    tag: int,
    sub: tuple[Step, ...],
    mask_item: list[MaskNode],
    value: object,
    entry: WorklistEntry,
) -> ResponseSequence:
    """One response item per entry item, each shaped like the mask's single item.

    wlmscpfs quirks kept: a mask sequence without exactly one item is returned
    as it came (:data:`ECHO`); when the entry has no such items, the mask's
    item is returned unfilled (its request values echoed).
    """
    entry_items = value if isinstance(value, list) else []
    if not entry_items:
        return ResponseSequence(tag, [echo_nodes(mask_item)])
    return ResponseSequence(tag, [_fill_level(sub, item, entry) for item in entry_items])


def echo_nodes(mask_nodes: list[MaskNode]) -> list[ResponseNode]:
    out: list[ResponseNode] = []
    for node in mask_nodes:
        if isinstance(node, MaskElement):
            out.append(ResponseElement(node.tag, node.vr, node.raw.rstrip(b" \x00")))
        else:
            out.append(ResponseSequence(node.tag, [echo_nodes(item) for item in node.items]))
    return out


def _clean_description_and_codes(
    nodes: list[ResponseNode], description: int, code_sequence: int
) -> None:
    """Drop an empty code sequence, else drop an empty description (wlmscpfs)."""
    codes = find(nodes, code_sequence)
    if isinstance(codes, ResponseSequence) and (
        not codes.items or (len(codes.items) == 1 and _is_empty_code(codes.items[0]))
    ):
        nodes.remove(codes)
        return
    text = find(nodes, description)
    if isinstance(text, ResponseElement) and not text.value:
        nodes.remove(text)


def _both_empty(item: list[ResponseNode], first: int, second: int) -> bool:
    """Whether ``item`` has both attributes, and both are empty."""
    return all(
        isinstance(node, ResponseElement) and not node.value
        for node in (find(item, first), find(item, second))
    )


def _is_empty_code(item: list[ResponseNode]) -> bool:
    return _both_empty(item, keys.CODE_VALUE, keys.CODING_SCHEME_DESIGNATOR)


def _clean_reference_sequence(nodes: list[ResponseNode], tag_: int) -> None:
    """A single item with both UIDs empty is removed, leaving an empty sequence."""
    seq = find(nodes, tag_)
    if not isinstance(seq, ResponseSequence) or len(seq.items) != 1:
        return
    if _both_empty(seq.items[0], keys.REFERENCED_SOP_CLASS_UID, keys.REFERENCED_SOP_INSTANCE_UID):
        seq.items.clear()


def declared_charset(entry: WorklistEntry, return_charset: ReturnCharset) -> str:
    if return_charset is ReturnCharset.ISO_IR_100:
        return "ISO_IR 100"
    if return_charset is ReturnCharset.KEEP:
        return entry.charset
    return ""


def _affected_by_charset(nodes: list[ResponseNode]) -> bool:
    for node in nodes:
        if isinstance(node, ResponseElement):
            if node.vr in keys.CHARSET_AFFECTED_VRS:
                return True
        elif any(_affected_by_charset(item) for item in node.items):
            return True
    return False
