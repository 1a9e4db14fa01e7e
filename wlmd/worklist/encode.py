"""Encoding response identifiers (PS3.5 section 7) without pydicom on the hot path.

Responses are small trees of raw byte values (see :mod:`wlmd.worklist.respond`);
writing them directly is an order of magnitude faster than building and
writing pydicom Datasets, and it keeps the worklist file's bytes untouched.
Sequences and items are written with explicit lengths.
"""

from __future__ import annotations

import functools
import operator
import struct
import zlib
from dataclasses import dataclass

from wlmd.worklist.respond import ResponseElement, ResponseNode

#: VRs with a 2-byte reserved field and a 4-byte length in explicit VR (PS3.5 7.1.2).
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
#: Padded with NUL instead of space (PS3.5 6.2).
NUL_PADDED = frozenset({"UI", "OB", "UN"})
BINARY_16 = frozenset({"US", "SS", "AT"})

ITEM = 0xFFFEE000


@dataclass(frozen=True)
class Encoding:
    """A transfer syntax's encoding rules."""

    implicit_vr: bool
    little_endian: bool
    deflated: bool = False


IMPLICIT_LITTLE = Encoding(implicit_vr=True, little_endian=True)
EXPLICIT_LITTLE = Encoding(implicit_vr=False, little_endian=True)
EXPLICIT_BIG = Encoding(implicit_vr=False, little_endian=False)
DEFLATED_EXPLICIT_LITTLE = Encoding(implicit_vr=False, little_endian=True, deflated=True)


def encode_identifier(
    nodes: list[ResponseNode], enc: Encoding, compression_level: int = 6
) -> bytes:
    """The encoded data set, deflated if the transfer syntax says so."""
    data = b"".join(encode_nodes(nodes, enc))
    if enc.deflated:
        compressor = zlib.compressobj(compression_level, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = compressor.compress(data) + compressor.flush()
    return data


#: The sort key of nodes; a C-level getter (responses come tag-ordered, so sorting is one pass).
_TAG = operator.attrgetter("tag")


def encode_nodes(nodes: list[ResponseNode], enc: Encoding) -> list[bytes]:
    return [_encode_node(node, enc) for node in sorted(nodes, key=_TAG)]


def _encode_node(node: ResponseNode, enc: Encoding) -> bytes:
    if isinstance(node, ResponseElement):
        value = _pad(node, enc)
        vr = node.vr
        if len(value) > 0xFFFF and vr not in LONG_VRS:
            vr = "UN"  # a value too long for a 16-bit length field (a broken file)
        return _header(node.tag, vr, enc, value) + value
    items = b"".join(_item(item, enc) for item in node.items)
    return _header(node.tag, "SQ", enc, items) + items


def _item(item: list[ResponseNode], enc: Encoding) -> bytes:
    body = b"".join(encode_nodes(item, enc))
    order = "<" if enc.little_endian else ">"
    return struct.pack(order + "HHI", ITEM >> 16, ITEM & 0xFFFF, len(body)) + body


def _pad(node: ResponseElement, enc: Encoding) -> bytes:
    value = node.value
    if node.vr in BINARY_16 and len(value) == 2 and not enc.little_endian:
        value = value[::-1]
    if len(value) % 2:
        value += b"\x00" if node.vr in NUL_PADDED else b" "
    return value


def _header(tag: int, vr: str, enc: Encoding, value: bytes) -> bytes:
    head, length = header_parts(tag, vr, enc.implicit_vr, enc.little_endian)
    return head + length.pack(len(value))


@functools.lru_cache(maxsize=4096)
def header_parts(
    tag: int, vr: str, implicit_vr: bool, little_endian: bool
) -> tuple[bytes, struct.Struct]:
    """The length-independent start of an element header and the length's format.

    The same few dozen (tag, VR) pairs recur in every response of a query:
    their bytes are packed once, not once per element per response.
    """
    order = "<" if little_endian else ">"
    group, element = tag >> 16, tag & 0xFFFF
    if implicit_vr:
        return struct.pack(order + "HH", group, element), struct.Struct(order + "I")
    if vr in LONG_VRS:
        # 2 reserved bytes, then a 4-byte length (PS3.5 7.1.2).
        return (
            struct.pack(order + "HH", group, element) + vr.encode() + b"\x00\x00",
            struct.Struct(order + "I"),
        )
    return struct.pack(order + "HH", group, element) + vr.encode(), struct.Struct(order + "H")
