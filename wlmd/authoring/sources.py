"""Where a submitted entry comes from: DICOM JSON, dcmdump/dump2dcm text, DICOM files.

- **DICOM JSON** (PS3.18 F.2), what dcm4chee-arc's and Orthanc's worklist APIs
  take: one object, or an array of objects. Bulk data by URI is refused (a
  worklist entry has none); InlineBinary is decoded.
- **Dump text**: the format ``dcmdump`` prints and ``dump2dcm`` reads (DCMTK's
  examples/wlistdb is written in it): one element per line, ``(gggg,eeee) VR
  value``, the value bare or in ``[...]``, ``=Name`` for a UID by name, ``#``
  comments; a sequence's items between ``(fffe,e000)`` and ``(fffe,e00d)``,
  the sequence closed by ``(fffe,e0dd)``. Parsed here rather than by running
  ``dump2dcm`` so the result never depends on a DCMTK being installed. The
  bytes of values are in the Specific Character Set the dump declares
  (dcmdump prints them unconverted), else UTF-8 or Latin-1.
- **DICOM files** (a ``.wl`` from another system): read with pydicom, values
  decoded by their own character set.

All give a :class:`~pydicom.dataset.Dataset` of decoded values, which
:mod:`wlmd.authoring.compose` encodes with the character set they need.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from pydicom import dcmread
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import UID_dictionary

from wlmd.authoring.compose import CHARSET_VRS
from wlmd.authoring.errors import BadInput
from wlmd.worklist.charset import decode

ITEM = 0xFFFEE000
ITEM_END = 0xFFFEE00D
SEQUENCE_END = 0xFFFEE0DD

_NUMBER_VRS = {"US": int, "UL": int, "SS": int, "SL": int, "UV": int, "SV": int}
_FLOAT_VRS = {"FL", "FD"}
_BINARY_VRS = {"OB", "OW", "OD", "OF", "OL", "OV", "UN"}
_LINE = re.compile(
    r"(?P<tag>\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)|[A-Za-z][A-Za-z0-9]*)"
    r"(?:\s+(?P<vr>[A-Za-z]{2}|-)(?=\s|$))?\s*(?P<rest>.*)"
)
_UID_BY_KEYWORD = {entry[4]: uid for uid, entry in UID_dictionary.items() if entry[4]}


# --- DICOM JSON ------------------------------------------------------------------------
def from_json(text: str | bytes) -> list[Dataset]:
    """The data sets of a DICOM JSON object or array (PS3.18 F.2)."""
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"not JSON: {exc}") from exc
    objects = document if isinstance(document, list) else [document]
    datasets = []
    for number, obj in enumerate(objects, start=1):
        if not isinstance(obj, dict):
            raise BadInput(f"JSON item {number} is not a DICOM JSON object")
        datasets.append(_dataset_from_json(obj, number))
    return datasets


def _dataset_from_json(obj: dict[str, Any], number: int) -> Dataset:
    def no_bulk_data(*_args: object) -> bytes:
        raise BadInput("BulkDataURI is not supported in a worklist entry")

    try:
        return Dataset.from_json(obj, bulk_data_uri_handler=no_bulk_data)
    except BadInput:
        raise
    except Exception as exc:  # pydicom raises many types for malformed JSON
        where = f"JSON item {number}: " if number > 1 else ""
        raise BadInput(f"{where}not a DICOM JSON data set ({type(exc).__name__}: {exc})") from exc


# --- DICOM files -------------------------------------------------------------------------
def from_dicom(data: bytes) -> Dataset:
    """The data set of a DICOM file (with or without preamble and meta)."""
    try:
        ds = dcmread(io.BytesIO(data), force=True)
        ds.decode()
    except Exception as exc:
        raise BadInput(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from exc
    if not any(element.tag.group > 0x0002 for element in ds):
        raise BadInput("not a DICOM file (no data set)")
    return ds


# --- dcmdump / dump2dcm text -----------------------------------------------------------
def from_dump(data: bytes) -> Dataset:
    """The data set a dcmdump listing or a dump2dcm input file describes."""
    text = data.decode("latin-1")  # the structure is ASCII; values are re-decoded below
    root = Dataset()
    stack: list[Dataset | Sequence] = [root]
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            _dump_line(line, stack)
        except BadInput as exc:
            raise BadInput(f"line {number}: {exc.reason}") from None
    if len(stack) != 1:
        raise BadInput("a sequence or item is not closed ((fffe,e00d) / (fffe,e0dd) missing)")
    _redecode(root, _declared_charset(root))
    return root


def _dump_line(line: str, stack: list[Dataset | Sequence]) -> None:
    match = _LINE.fullmatch(line)
    if match is None:
        raise BadInput(f"not an element: {line[:60]!r}")
    tag_ = _tag(match.group("tag"))
    top = stack[-1]
    if tag_ == ITEM:
        if not isinstance(top, Sequence):
            raise BadInput("an item (fffe,e000) outside a sequence")
        item = Dataset()
        top.append(item)
        stack.append(item)
        return
    if tag_ == ITEM_END:
        if not isinstance(top, Dataset) or len(stack) < 3:
            raise BadInput("(fffe,e00d) without an open item")
        stack.pop()
        return
    if tag_ == SEQUENCE_END:
        if not isinstance(top, Sequence):
            raise BadInput("(fffe,e0dd) without an open sequence")
        stack.pop()
        return
    if not isinstance(top, Dataset):
        raise BadInput("an element in a sequence outside an item (fffe,e000)")
    vr = (match.group("vr") or "").upper()
    if not vr or vr == "-":
        vr = _dictionary_vr(tag_)
    if vr == "SQ":
        sequence = Sequence()
        if tag_ >> 16 != 0x0002:
            top.add(DataElement(tag_, "SQ", sequence))
        stack.append(sequence)
        return
    if tag_ >> 16 == 0x0002 or tag_ & 0xFFFF == 0:
        return  # file meta and group lengths are written anew
    top.add(DataElement(tag_, vr, _value(vr, match.group("rest"))))


def _tag(text: str) -> int:
    if text.startswith("("):
        return int(text[1:5] + text[6:10], 16)
    found = tag_for_keyword(text)
    if found is None:
        raise BadInput(f"unknown attribute {text!r}")
    return int(found)


def _dictionary_vr(tag_: int) -> str:
    try:
        return str(dictionary_VR(Tag(tag_))).split(" or ")[0]
    except KeyError:
        raise BadInput(f"({tag_ >> 16:04X},{tag_ & 0xFFFF:04X}) needs a VR") from None


def _value(vr: str, rest: str) -> Any:
    rest = rest.strip()
    if rest.startswith("["):
        end = rest.rfind("]")
        if end < 0:
            raise BadInput("a value in [...] is not closed")
        raw = rest[1:end]
    elif rest.startswith("(") or not rest:
        raw = ""  # "(no value available)"
    else:
        raw = re.split(r"\s+#", rest, maxsplit=1)[0].strip()
    if raw.startswith("=") and vr == "UI":
        uid = _UID_BY_KEYWORD.get(raw[1:])
        if uid is None:
            raise BadInput(f"unknown UID name {raw}")
        return uid
    if not raw:
        # as dump2dcm: an empty text value is "", an empty number or binary none
        return None if vr in _NUMBER_VRS or vr in _FLOAT_VRS or vr in _BINARY_VRS else ""
    try:
        if vr in _NUMBER_VRS:
            numbers = [_NUMBER_VRS[vr](v) for v in raw.split("\\")]
            return numbers if len(numbers) > 1 else numbers[0]
        if vr in _FLOAT_VRS:
            floats = [float(v) for v in raw.split("\\")]
            return floats if len(floats) > 1 else floats[0]
        if vr in _BINARY_VRS:
            return bytes.fromhex(raw.replace("\\", ""))
    except ValueError:
        raise BadInput(f"bad {vr} value {raw[:40]!r}") from None
    return raw if "\\" not in raw else raw.split("\\")


def _declared_charset(root: Dataset) -> str | None:
    declared = root.get("SpecificCharacterSet")
    if not declared:
        return None
    return declared if isinstance(declared, str) else "\\".join(declared)


def _redecode(ds: Dataset, charset: str | None) -> None:
    """Values were read as Latin-1 characters: back to bytes, decoded as the server would."""
    for element in ds:
        if element.VR == "SQ":
            for item in element.value or []:
                _redecode(item, charset)
        elif element.VR in CHARSET_VRS and element.value is not None:
            values = element.value if element.VM > 1 else [element.value]
            texts = [_recode(str(v), charset) for v in values]
            element.value = texts if element.VM > 1 else texts[0]


def _recode(text: str, charset: str | None) -> str:
    raw = text.encode("latin-1")
    if charset is not None:
        return decode(raw, charset)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text
