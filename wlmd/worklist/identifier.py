"""A C-FIND request identifier read straight from its bytes, for the search mask check.

Checking the search mask needs, per element, its tag, VR and raw value
bytes, and the items of sequences: nothing pydicom's conversion adds.
Building a pydicom Dataset and reading it back was most of a query's cost on
a small storage area (py-spy: 35 % of a C-FIND on an open association, in
``Dataset.__getitem__``, ``Dataset.__init__``, the sequence reader).

:func:`parse` reads the common, well-formed case: an explicit or implicit
VR, little or big endian data set (PS3.5 7.1), sequences and items of
defined or undefined length (PS3.5 7.5). It gives exactly what the search
mask check would read through pydicom (the VR rules of
:func:`wlmd.worklist.searchmask.check_search_mask`), and gives up (None) on
anything unusual, where pydicom's lenient reader has its own rules: a value
or item running past its container, trailing bytes, unknown VR bytes, an
explicit VR data set that switches to implicit VR, a repeated tag, an
undefined length on anything but a sequence, an item that is not
(FFFE,E000). The caller then decodes with pydicom, as before, so a strange
request gets the same answer (tests/unit/worklist/test_identifier.py compares both
readers on the differential and fuzz cases and on mutated requests).
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

#: VRs pydicom reads as such (anything else in an explicit VR stream: give up)
_KNOWN_VRS = frozenset(str(v) for v in VR)
_ENCODED_VRS = {v.encode("ascii"): v for v in _KNOWN_VRS}
_LONG_VRS = frozenset(str(v) for v in EXPLICIT_VR_LENGTH_32)

SPECIFIC_CHARACTER_SET = 0x00080005
ITEM = 0xFFFEE000
ITEM_DELIMITER = 0xFFFEE00D
SEQUENCE_DELIMITER = 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF


class _Unusual(Exception):
    """Not the plain case: leave it to pydicom."""


@dataclass(slots=True)
class RawElement:
    """One element as read: the VR in the stream (None in implicit VR), value bytes or items."""

    vr: str | None
    value: bytes
    #: a sequence's items (sequences only; their VR is SQ, in the stream or the dictionary)
    items: list[Level] | None = None


@dataclass(slots=True)
class Level:
    """One data set: the top-level identifier or a sequence item."""

    elements: dict[int, RawElement]


@functools.lru_cache(maxsize=1024)
def dictionary_vr(tag: int) -> str | None:
    """The data dictionary's VR of ``tag``; None if it is not in the dictionary."""
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return None


def parse(data: bytes, implicit_vr: bool, little_endian: bool) -> Level | None:
    """The identifier's elements, or None where pydicom's reader must decide."""
    if not data:
        return Level({})
    try:
        reader = _Reader(data, implicit_vr, little_endian)
        level, end = reader.level(0, len(data), top=True)
    except (_Unusual, struct.error):
        return None
    return level if end == len(data) else None


class _Reader:
    def __init__(self, data: bytes, implicit_vr: bool, little_endian: bool) -> None:
        self.data = data
        self.implicit = implicit_vr
        order = "<" if little_endian else ">"
        self.tag_length = struct.Struct(order + "HHL").unpack_from
        self.explicit_short = struct.Struct(order + "HH2sH").unpack_from
        self.long_length = struct.Struct(order + "L").unpack_from

    def _looks_implicit(self, pos: int) -> bool:
        """pydicom's test on a data set's first element (``_is_implicit_vr``)."""
        a, b = self.data[pos + 4], self.data[pos + 5]
        return not (0x40 < a < 0x5B and 0x40 < b < 0x5B)

    def level(self, pos: int, end: int | None, top: bool = False) -> tuple[Level, int]:
        """Elements from ``pos`` to ``end`` (None: to the item delimiter); (level, next pos)."""
        data = self.data
        limit = len(data) if end is None else end
        elements: dict[int, RawElement] = {}
        # pydicom looks at a top-level data set's first element to tell explicit from
        # implicit VR; in explicit VR, an implicit one gives unknown VR bytes (refused below)
        check_first = top and self.implicit
        while end is None or pos < end:
            if pos + 8 > limit:
                raise _Unusual("element header cut")
            group, number, length = self.tag_length(data, pos)
            tag = group << 16 | number
            if group == 0xFFFE:
                if tag == ITEM_DELIMITER and end is None and length == 0:
                    return Level(elements), pos + 8
                raise _Unusual("item tag inside a data set")
            if check_first:
                check_first = False
                if not self._looks_implicit(pos):  # pydicom would read it as explicit VR
                    raise _Unusual("explicit VR data set in an implicit VR transfer syntax")
            vr: str | None = None
            start = pos + 8
            if not self.implicit:
                _g, _n, vr_bytes, length = self.explicit_short(data, pos)
                vr = _ENCODED_VRS.get(vr_bytes)
                if vr is None:
                    raise _Unusual("unknown VR")
                if vr in _LONG_VRS:
                    if start + 4 > limit:
                        raise _Unusual("element header cut")
                    (length,) = self.long_length(data, start)
                    start += 4
            if tag in elements:
                raise _Unusual("repeated tag")
            is_sequence = (vr if vr is not None else dictionary_vr(tag)) == "SQ"
            if tag == SPECIFIC_CHARACTER_SET and (is_sequence or vr not in (None, "CS")):
                raise _Unusual("Specific Character Set of another VR")  # pydicom converts it
            if length == UNDEFINED:
                if not is_sequence:
                    raise _Unusual("undefined length outside a sequence")
                items, pos = self.sequence(start, None)
                elements[tag] = RawElement(vr, b"", items)
                continue
            pos = start + length
            if pos > limit:
                raise _Unusual("value runs past its data set")
            if is_sequence:
                items, _ = self.sequence(start, pos)
                elements[tag] = RawElement(vr, b"", items)
            else:
                elements[tag] = RawElement(vr, data[start:pos])
        if end is None:
            raise _Unusual("no item delimiter")
        return Level(elements), pos

    def sequence(self, pos: int, end: int | None) -> tuple[list[Level], int]:
        """Items from ``pos`` to ``end`` (None: to the sequence delimiter)."""
        data = self.data
        limit = len(data) if end is None else end
        items: list[Level] = []
        while end is None or pos < end:
            if pos + 8 > limit:
                raise _Unusual("item header cut")
            group, number, length = self.tag_length(data, pos)
            tag = group << 16 | number
            if tag == SEQUENCE_DELIMITER and end is None and length == 0:
                return items, pos + 8
            if tag != ITEM:
                raise _Unusual("not an item")
            if length == UNDEFINED:
                item, pos = self.level(pos + 8, None)
            else:
                item_end = pos + 8 + length
                if item_end > limit:
                    raise _Unusual("item runs past its sequence")
                item, pos = self.level(pos + 8, item_end)
            items.append(item)
        if end is None:
            raise _Unusual("no sequence delimiter")
        return items, pos
