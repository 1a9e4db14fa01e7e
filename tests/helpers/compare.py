"""Compare C-FIND response data sets from two servers.

``canonical(ds)`` turns a data set into a hashable tuple, element by element in tag
order, nested sequences included (item order kept: it is significant in DICOM)::

    ((tag, VR, value), ...)

Values are compared *raw*: text VRs as the bytes received (trailing space/NUL padding
stripped), so a server that re-encodes characters (e.g. Latin-1 → UTF-8) or changes a
value shows up as a difference, and Specific Character Set (0008,0005) is an ordinary
element of the comparison. Binary VRs (US, UL, FD, AT, …) are decoded to numbers so
the byte order of the transfer syntax does not matter. ``compare_responses`` compares
two *multisets* of responses (servers may answer in any order) and returns a readable
diff, or None when they are equal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from tests.helpers.worklists import TEXT_VRS

Canon = tuple[tuple[int, str, Any], ...]


def _raw_bytes(elem: DataElement | RawDataElement, ds: Dataset) -> bytes:
    if isinstance(elem, RawDataElement):
        return elem.value or b""
    # an already converted element: re-encode like pydicom would write it
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, elem, ds._character_set)
    data = fp.getvalue()
    header = 12 if elem.VR in ("OB", "OW", "OF", "SQ", "UT", "UN", "UC", "UR") else 8
    return data[header:]


def canonical(ds: Dataset) -> Canon:
    """A hashable, comparable form of ``ds`` (see module docstring)."""
    out: list[tuple[int, str, Any]] = []
    for tag in sorted(ds.keys()):
        if Tag(tag).group == 0x0002:
            continue  # file meta written by findscu, not part of the response
        elem = ds.get_item(tag)
        vr = str(elem.VR)
        if vr == "SQ":
            items = ds[tag].value
            out.append((int(tag), vr, tuple(canonical(item) for item in items)))
        elif vr in TEXT_VRS:
            raw = _raw_bytes(elem, ds).rstrip(b" \x00")
            out.append((int(tag), vr, raw))
        else:
            value = (
                convert_raw_data_element(elem, encoding=ds._character_set, ds=ds).value
                if isinstance(elem, RawDataElement)
                else elem.value
            )
            if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
                value = tuple(value)
            out.append((int(tag), vr, value))
    return tuple(out)


def _tag(tag: int) -> str:
    kw = keyword_for_tag(tag) or "?"
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {kw}"


def format_canon(canon: Canon, indent: str = "") -> str:
    """dcmdump-like text of a canonical data set."""
    lines: list[str] = []
    for tag, vr, value in canon:
        if vr == "SQ":
            lines.append(f"{indent}{_tag(tag)} SQ ({len(value)} items)")
            for n, item in enumerate(value, start=1):
                lines.append(f"{indent}  item {n}:")
                lines.append(format_canon(item, indent + "    "))
        else:
            shown = value.decode("latin-1") if isinstance(value, bytes) else value
            lines.append(f"{indent}{_tag(tag)} {vr} [{shown}]")
    return "\n".join(line for line in lines if line)


def diff_canon(a: Canon, b: Canon, indent: str = "") -> list[str]:
    """Element-level differences between two canonical data sets."""
    da = {tag: (vr, value) for tag, vr, value in a}
    db = {tag: (vr, value) for tag, vr, value in b}
    lines: list[str] = []
    for tag in sorted(set(da) | set(db)):
        if tag not in db:
            lines.append(f"{indent}only left:  {_tag(tag)} {da[tag][0]} {_short(da[tag][1])}")
        elif tag not in da:
            lines.append(f"{indent}only right: {_tag(tag)} {db[tag][0]} {_short(db[tag][1])}")
        elif da[tag] != db[tag]:
            (va, xa), (vb, xb) = da[tag], db[tag]
            if va == vb == "SQ" and len(xa) == len(xb):
                for n, (ia, ib) in enumerate(zip(xa, xb, strict=True), start=1):
                    sub = diff_canon(ia, ib, indent + "    ")
                    if sub:
                        lines.append(f"{indent}{_tag(tag)} item {n}:")
                        lines += sub
            else:
                lines.append(
                    f"{indent}differs:    {_tag(tag)} "
                    f"left {va} {_short(xa)} / right {vb} {_short(xb)}"
                )
    return lines


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return f"[{value.decode('latin-1')}]"
    if isinstance(value, tuple) and value and isinstance(value[0], tuple):
        return f"({len(value)} items)"
    return f"[{value!r}]"


def compare_responses(
    left: Iterable[Dataset],
    right: Iterable[Dataset],
    left_name: str = "left",
    right_name: str = "right",
) -> str | None:
    """None if both are the same multiset of data sets, else a readable report."""
    ca = Counter(canonical(ds) for ds in left)
    cb = Counter(canonical(ds) for ds in right)
    if ca == cb:
        return None
    only_a = list((ca - cb).elements())
    only_b = list((cb - ca).elements())
    report = [
        f"{left_name}: {sum(ca.values())} responses, {right_name}: {sum(cb.values())}; "
        f"{len(only_a)} only from {left_name}, {len(only_b)} only from {right_name}"
    ]
    remaining = list(only_b)
    for n, item in enumerate(only_a, start=1):
        if remaining:
            # pair with the most similar unmatched right-hand response for the diff
            best = min(remaining, key=lambda other: len(diff_canon(item, other)))
            remaining.remove(best)
            report.append(
                f"--- response {n} ({left_name}) vs closest ({right_name}); left={left_name}:"
            )
            report += diff_canon(item, best, "  ")
        else:
            report.append(f"--- response {n} only from {left_name}:")
            report.append(format_canon(item, "  "))
    for item in remaining:
        report.append(f"--- response only from {right_name}:")
        report.append(format_canon(item, "  "))
    return "\n".join(report)
