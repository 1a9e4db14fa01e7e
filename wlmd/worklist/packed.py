"""One worklist entry's values in one ``bytes`` object, read through shared layouts.

An entry held as nested dicts of small ``bytes`` costs about 2 KB for the
~650 bytes of values a typical file has: 33 bytes of object header per
value, a dict per data set level, a list per sequence. Here the values of
the whole entry, depth first, are concatenated into one blob behind a table
of offsets, and *which* tags sit at which level and where their values are
in the table is a :class:`Layout` shared by every entry of the same shape
(a RIS writes thousands of files with the same tags). A 100,000-entry
snapshot shrinks by about half and, because one entry is two objects
instead of dozens, a fresh worker that reads a matched entry dirties (by
reference counting) one or two copy-on-write pages instead of a dozen.

Blob layout: ``V + 1`` offsets, 16-bit when the blob stays under 64 KiB
(nearly always), else 32-bit, little endian; value ``k`` is
``blob[offset[k]:offset[k + 1]]``. The width is part of the shape.

Readers get an :class:`ItemView` per data set level: a read-only mapping of
tag to bytes, or to a list of views for a sequence, the same interface the
nested dicts had.
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Iterator, Mapping, Sequence

#: A value in an entry: raw bytes (trailing padding removed), or the items of a sequence.
Value = bytes | list["ItemView"]
#: What an entry is built from (the loader's nested dicts) and read as (views): a data set level.
Item = Mapping[int, bytes | Sequence["Item"]]

#: The structure of one level: a tag per value, (tag, item keys) per sequence.
ShapeKey = tuple[int | tuple[int, tuple["ShapeKey", ...]], ...]

_PAIR = {2: struct.Struct("<2H").unpack_from, 4: struct.Struct("<2I").unpack_from}
#: Distinct shapes kept shared; beyond this (a site writing files of ever new shapes) new
#: layouts are still correct, only not shared.
_SHAPE_LIMIT = 4096
_shapes: dict[tuple[int, ShapeKey], Layout] = {}


class Layout:
    """Where each tag of one data set level is: a value's table position, or the items' layouts.

    ``where[tag]`` is the byte position of the value's start offset in the
    blob's table (an ``int``), or a tuple of one :class:`Layout` per item of
    a sequence, in the file's order. Only the root layout's ``key``, ``values``
    and ``table`` are set: its shape's key (for the snapshot cache), how many
    values the blob holds and how to read its whole offset table at once (for
    the response encoder).
    """

    __slots__ = ("key", "pair", "table", "values", "where", "width")

    def __init__(self, width: int) -> None:
        self.width = width
        self.pair = _PAIR[width]
        self.where: dict[int, int | tuple[Layout, ...]] = {}
        self.key: ShapeKey = ()
        self.values = 0
        self.table = self.pair  # set for the root by shape()


def pack(item: Item) -> tuple[Layout, bytes]:
    """The layout and blob holding ``item`` (nested dicts of bytes and lists of items)."""
    values: list[bytes] = []
    key = _collect(item, values)
    table_size = (len(values) + 1) * 2
    width = 2 if table_size + sum(map(len, values)) <= 0xFFFF else 4
    offsets = itertools.accumulate(map(len, values), initial=table_size * width // 2)
    return shape(width, key), _table(width, len(values) + 1).pack(*offsets) + b"".join(values)


@functools.cache
def _table(width: int, count: int) -> struct.Struct:
    return struct.Struct(f"<{count}{'H' if width == 2 else 'I'}")


def _collect(item: Item, values: list[bytes]) -> ShapeKey:
    key: list[int | tuple[int, tuple[ShapeKey, ...]]] = []
    for tag, value in item.items():
        if isinstance(value, bytes):
            key.append(tag)
            values.append(value)
        else:
            key.append((tag, tuple(_collect(child, values) for child in value)))
    return tuple(key)


def shape(width: int, key: ShapeKey) -> Layout:
    """The (shared) root layout for ``key``; raises ValueError for a malformed key."""
    held = _shapes.get((width, key))
    if held is not None:
        return held
    if width not in _PAIR:
        raise ValueError(f"offset width {width!r}")
    counter = [0]
    root = _build(width, key, counter)
    root.key = key
    root.values = counter[0]
    root.table = _table(width, counter[0] + 1).unpack_from
    if len(_shapes) < _SHAPE_LIMIT:
        _shapes[(width, key)] = root
    return root


def _build(width: int, key: ShapeKey, counter: list[int]) -> Layout:
    layout = Layout(width)
    where = layout.where
    place: int | tuple[Layout, ...]
    for part in key:
        if isinstance(part, int):
            tag, place = part, counter[0] * width
            counter[0] += 1
        else:
            tag, items = part
            if not isinstance(tag, int) or not isinstance(items, tuple):
                raise ValueError("malformed shape")
            place = tuple(_build(width, child, counter) for child in items)
        if tag in where:
            raise ValueError(f"malformed shape (tag {tag:08X} twice)")
        where[tag] = place
    return layout


def check(layout: Layout, blob: bytes) -> None:
    """Raise ValueError unless ``blob`` is a well-formed blob of ``layout``'s shape."""
    table_size = (layout.values + 1) * layout.width
    if len(blob) < table_size:
        raise ValueError("blob shorter than its offset table")
    offsets = layout.table(blob)
    if offsets[0] != table_size or offsets[-1] != len(blob):
        raise ValueError("blob does not match its offset table")
    if any(a > b for a, b in itertools.pairwise(offsets)):
        raise ValueError("offsets out of order")


class ItemView(Mapping[int, Value]):
    """One data set level of a packed entry, as a read-only mapping (made when asked)."""

    __slots__ = ("_blob", "_layout")

    def __init__(self, layout: Layout, blob: bytes) -> None:
        self._layout = layout
        self._blob = blob

    def get(self, tag: int, default: object = None) -> Value | None:  # type: ignore[override]
        where = self._layout.where.get(tag)
        if where is None:
            return default  # type: ignore[return-value]
        if where.__class__ is int:
            start, end = self._layout.pair(self._blob, where)
            return self._blob[start:end]
        blob = self._blob
        return [ItemView(child, blob) for child in where]  # type: ignore[union-attr]

    def __getitem__(self, tag: int) -> Value:
        value = self.get(tag)
        if value is None:
            raise KeyError(tag)
        return value

    def __contains__(self, tag: object) -> bool:
        return tag in self._layout.where

    def __iter__(self) -> Iterator[int]:
        return iter(self._layout.where)

    def __len__(self) -> int:
        return len(self._layout.where)

    def __repr__(self) -> str:
        return f"ItemView({dict(self.items())!r})"
