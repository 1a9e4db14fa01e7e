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

from wlmd.config import ReturnCharset
from wlmd.worklist import keys
from wlmd.worklist.entry import Item, WorklistEntry
from wlmd.worklist.searchmask import MaskElement, MaskNode, MaskSequence, SearchMask, find


@dataclass
class ResponseElement:
    tag: int
    vr: str
    value: bytes


@dataclass
class ResponseSequence:
    tag: int
    items: list[list[ResponseNode]] = field(default_factory=list)


ResponseNode = ResponseElement | ResponseSequence


def build_response(
    entry: WorklistEntry, mask: SearchMask, return_charset: ReturnCharset
) -> list[ResponseNode]:
    """The response identifier for ``entry``, as a tag-ordered list of nodes."""
    nodes = _fill_level(mask.nodes, entry.elements, entry, top=True)
    sps = find(nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    if isinstance(sps, ResponseSequence) and sps.items:
        _clean_description_and_codes(
            sps.items[0], keys.SPS_DESCRIPTION, keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE
        )
    _clean_description_and_codes(
        nodes, keys.REQUESTED_PROCEDURE_DESCRIPTION, keys.REQUESTED_PROCEDURE_CODE_SEQUENCE
    )
    for t in (keys.REFERENCED_STUDY_SEQUENCE, keys.REFERENCED_PATIENT_SEQUENCE):
        _clean_reference_sequence(nodes, t)
    charset = _declared_charset(entry, return_charset)
    if charset and _affected_by_charset(nodes):
        nodes.insert(0, ResponseElement(keys.SPECIFIC_CHARACTER_SET, "CS", charset.encode()))
    return nodes


def _fill_level(
    mask_nodes: list[MaskNode], source: Item | None, entry: WorklistEntry, top: bool
) -> list[ResponseNode]:
    out: list[ResponseNode] = []
    for node in mask_nodes:
        if isinstance(node, MaskElement):
            out.append(ResponseElement(node.tag, node.vr, _value(node, source, entry, top)))
        else:
            out.append(_fill_sequence(node, source, entry))
    return out


def _value(node: MaskElement, source: Item | None, entry: WorklistEntry, top: bool) -> bytes:
    if node.tag == keys.PREGNANCY_STATUS and top:
        status = entry.pregnancy_status
        number = keys.PREGNANCY_STATUS_UNKNOWN if status is None else status
        return struct.pack("<H", number & 0xFFFF) if node.vr == "US" else str(number).encode()
    value = source.get(node.tag) if source is not None else None
    return value if isinstance(value, bytes) else b""


def _fill_sequence(
    node: MaskSequence, source: Item | None, entry: WorklistEntry
) -> ResponseSequence:
    """One response item per entry item, each shaped like the mask's single item.

    wlmscpfs quirks kept: a mask sequence without exactly one item is returned
    as it came; when the entry has no such items, the mask's item is returned
    unfilled (its request values echoed).
    """
    if len(node.items) != 1:
        return ResponseSequence(node.tag, [_echo(item) for item in node.items])
    value = source.get(node.tag) if source is not None else None
    entry_items = value if isinstance(value, list) else []
    if not entry_items:
        return ResponseSequence(node.tag, [_echo(node.items[0])])
    return ResponseSequence(
        node.tag, [_fill_level(node.items[0], item, entry, top=False) for item in entry_items]
    )


def _echo(mask_nodes: list[MaskNode]) -> list[ResponseNode]:
    out: list[ResponseNode] = []
    for node in mask_nodes:
        if isinstance(node, MaskElement):
            out.append(ResponseElement(node.tag, node.vr, node.raw.rstrip(b" \x00")))
        else:
            out.append(ResponseSequence(node.tag, [_echo(item) for item in node.items]))
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


def _declared_charset(entry: WorklistEntry, return_charset: ReturnCharset) -> str:
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
