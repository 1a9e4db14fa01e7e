"""One worklist file, parsed once into a compact record.

A :class:`WorklistEntry` keeps the raw value bytes of every attribute (so
responses carry exactly what the RIS wrote, as with wlmscpfs), packed into
one blob with a shared layout (:mod:`wlmd.worklist.packed`), and decodes the
matching keys when asked (so matching never re-parses DICOM). Loading and
the completeness check of PS3.4 Table K.6-1 live here; I/O is limited to
reading the one file.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydicom import dcmread
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.tag import Tag

from wlmd.worklist import keys
from wlmd.worklist.charset import decode
from wlmd.worklist.packed import Item, ItemView, Layout, Value, pack

__all__ = [
    "Item",
    "ItemView",
    "TextView",
    "Value",
    "WorklistEntry",
    "WorklistFileError",
    "incompleteness",
    "load_entry",
]


class WorklistFileError(Exception):
    """A ``.wl`` file that cannot be used; the message says why, for the log."""


class WorklistEntry:
    """The parsed content of one ``.wl`` file.

    Built from the loader's nested dicts (or, by :meth:`from_packed`, from the
    snapshot cache); read through :attr:`elements`, a view made when asked.
    Entries compare by identity, as the index expects.
    """

    __slots__ = ("_blob", "_layout", "charset", "name", "pregnancy_status")

    def __init__(
        self,
        name: str,
        elements: Item,
        charset: str = "",
        pregnancy_status: int | None = None,
    ) -> None:
        self.name = name
        self._layout, self._blob = pack(elements)
        #: Raw (0008,0005) of the file ("" when absent).
        self.charset = charset
        #: PregnancyStatus (US) as a number, None when absent.
        self.pregnancy_status = pregnancy_status

    @classmethod
    def from_packed(
        cls,
        name: str,
        layout: Layout,
        blob: bytes,
        charset: str = "",
        pregnancy_status: int | None = None,
    ) -> WorklistEntry:
        """An entry from a layout and blob already checked (:func:`packed.check`)."""
        entry = cls.__new__(cls)
        entry.name = name
        entry._layout = layout
        entry._blob = blob
        entry.charset = charset
        entry.pregnancy_status = pregnancy_status
        return entry

    @property
    def packed(self) -> tuple[Layout, bytes]:
        """The root layout and the blob (the response encoder and the snapshot cache)."""
        return self._layout, self._blob

    @property
    def elements(self) -> ItemView:
        """The top level of the data set: tag → raw bytes, or → item views of a sequence."""
        return ItemView(self._layout, self._blob)

    def sequence(self, tag_: int, item: Item | None = None) -> list[Item] | None:
        value = (self.elements if item is None else item).get(tag_)
        return value if isinstance(value, list) else None

    def __repr__(self) -> str:
        return f"WorklistEntry({self.name!r}, {self.elements!r}, {self.charset!r})"

    @property
    def root_text(self) -> TextView:
        """Decoded text of the top-level matching keys present in the file."""
        return TextView(self.elements, keys.ROOT_MATCHING_TAGS, self.charset)

    @property
    def sps_text(self) -> list[TextView] | None:
        """Decoded text of the SPS matching keys, one view per SPS item; None without SPS."""
        sps = self.sequence(keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
        if sps is None:
            return None
        return [TextView(item, keys.SPS_MATCHING_TAGS, self.charset) for item in sps]


class TextView(Mapping[int, str]):
    """The matching keys of one data set level as text, decoded when asked.

    Decoding on demand instead of keeping the texts next to the raw values
    saves about a quarter of a snapshot's memory; matching touches only the
    keys a query names, and only for the candidates the index lets through.
    """

    __slots__ = ("_charset", "_item", "_tags")

    def __init__(self, item: Item, tags: frozenset[int], charset: str) -> None:
        self._item = item
        self._tags = tags
        self._charset = charset

    def __getitem__(self, tag_: int) -> str:
        value = self._item[tag_] if tag_ in self._tags else None
        if not isinstance(value, bytes):
            raise KeyError(tag_)
        return decode(value, self._charset)

    def get(self, tag_: int, default: str | None = None) -> str | None:  # type: ignore[override]
        value = self._item.get(tag_) if tag_ in self._tags else None
        if not isinstance(value, bytes):
            return default
        return decode(value, self._charset)

    def __iter__(self) -> Iterator[int]:
        return (t for t, v in self._item.items() if t in self._tags and isinstance(v, bytes))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def load_entry(path: str, name: str) -> WorklistEntry:
    """Parse one worklist file; raises :class:`WorklistFileError` with a reason."""
    try:
        _check_looks_like_dicom(path)
    except OSError as exc:
        raise WorklistFileError(exc.strerror or str(exc)) from exc
    try:
        ds = dcmread(path, force=True)
    except FileNotFoundError as exc:
        raise WorklistFileError("file vanished while reading") from exc
    except PermissionError as exc:
        raise WorklistFileError("permission denied") from exc
    except IsADirectoryError as exc:
        raise WorklistFileError("is a directory") from exc
    except Exception as exc:  # pydicom raises many types for corrupt input
        raise WorklistFileError(f"not a readable DICOM file ({_reason(exc)})") from exc
    try:
        elements = _read_item(ds)
    except Exception as exc:
        raise WorklistFileError(f"corrupt DICOM data ({_reason(exc)})") from exc
    if not elements:
        raise WorklistFileError("contains no DICOM data set (empty or not DICOM)")
    charset = _text(elements.get(keys.SPECIFIC_CHARACTER_SET)).strip(" \x00")
    entry = WorklistEntry(name=name, elements=elements, charset=charset)
    entry.pregnancy_status = _pregnancy_status(ds)
    return entry


def _check_looks_like_dicom(path: str) -> None:
    """Refuse what is plainly not DICOM before pydicom's forgiving parser sees it.

    Like DCMTK, files without the 128-byte preamble are accepted when they
    start with a plausible group (0002, 0008 or 0010, little endian).
    """
    with open(path, "rb") as fp:
        head = fp.read(132)
    if not head:
        raise WorklistFileError("empty file (0 bytes)")
    if len(head) == 132 and head[128:132] == b"DICM":
        return
    if len(head) >= 8 and int.from_bytes(head[:2], "little") in (0x0002, 0x0008, 0x0010):
        return
    raise WorklistFileError("not a DICOM file (no DICM preamble, no data set)")


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _read_item(ds: Dataset) -> dict[int, bytes | list]:  # type: ignore[type-arg]
    """Raw values of a data set, recursing into sequences; file meta is skipped."""
    item: dict[int, bytes | list] = {}  # type: ignore[type-arg]
    for tag_ in ds.keys():  # noqa: SIM118 (iterating a Dataset yields elements)
        t = int(tag_)
        if t >> 16 <= 0x0002 or t & 0xFFFF == 0:
            continue
        elem = ds.get_item(t)
        vr = elem.VR if elem is not None else None
        if not vr:
            try:
                vr = dictionary_VR(Tag(t))
            except KeyError:
                vr = "UN"
        if vr == "SQ":
            item[t] = [_read_item(child) for child in ds[t].value or []]
        elif isinstance(elem, RawDataElement):
            raw = bytes(elem.value or b"")
            if elem.length != 0xFFFFFFFF and len(raw) < elem.length:
                raise ValueError(f"truncated in element ({t >> 16:04X},{t & 0xFFFF:04X})")
            item[t] = raw.rstrip(b" \x00")
        else:
            item[t] = str(ds[t].value or "").encode("utf-8")
    return item


def _pregnancy_status(ds: Dataset) -> int | None:
    try:
        value = ds.get("PregnancyStatus")
    except Exception:
        return None
    if value is None or value == "" or isinstance(value, (bytes, list)):
        return None
    return int(value)


def _text(value: Value | None) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else ""


# --- completeness (PS3.4 Table K.6-1 return key type 1), dcmwlm DatasetIsComplete ---

_REQUIRED_IN_SPS = (
    keys.SCHEDULED_STATION_AE_TITLE,
    keys.SPS_START_DATE,
    keys.SPS_START_TIME,
    keys.MODALITY,
    keys.SPS_ID,
)
_REQUIRED_AT_ROOT = (
    keys.REQUESTED_PROCEDURE_ID,
    keys.STUDY_INSTANCE_UID,
    keys.PATIENT_NAME,
    keys.PATIENT_ID,
)


def incompleteness(entry: WorklistEntry) -> str | None:
    """Why the entry lacks a type 1 return key, or None when it is complete.

    The rules are wlmscpfs's (``--enable-file-reject``): exactly one SPS item;
    the type 1 attributes present and non-empty; a procedure description, or
    a code sequence whose items all have CodeValue and CodingSchemeDesignator;
    referenced study/patient sequences absent, empty, or with complete items.
    """
    sps = entry.sequence(keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    if sps is None or len(sps) != 1:
        return "ScheduledProcedureStepSequence is missing or does not have exactly one item"
    sps_item = sps[0]
    for t in _REQUIRED_IN_SPS:
        if _absent_or_empty(sps_item, t):
            return f"ScheduledProcedureStepSequence > {_name(t)} is missing or empty"
    for t in _REQUIRED_AT_ROOT:
        if _absent_or_empty(entry.elements, t):
            return f"{_name(t)} is missing or empty"
    problem = _description_problem(
        sps_item, keys.SPS_DESCRIPTION, keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE
    ) or _description_problem(
        entry.elements, keys.REQUESTED_PROCEDURE_DESCRIPTION, keys.REQUESTED_PROCEDURE_CODE_SEQUENCE
    )
    if problem:
        return problem
    for t in (keys.REFERENCED_STUDY_SEQUENCE, keys.REFERENCED_PATIENT_SEQUENCE):
        for ref in entry.sequence(t) or []:
            if _absent_or_empty(ref, keys.REFERENCED_SOP_CLASS_UID) or _absent_or_empty(
                ref, keys.REFERENCED_SOP_INSTANCE_UID
            ):
                return f"{_name(t)} has an item without ReferencedSOPClassUID/InstanceUID"
    return None


def _absent_or_empty(item: Item, t: int) -> bool:
    value = item.get(t)
    return value is None or len(value) == 0


def _description_problem(item: Item, description: int, code_sequence: int) -> str | None:
    codes = item.get(code_sequence)
    if isinstance(codes, list):
        if not codes:
            return f"{_name(code_sequence)} is empty"
        for code in codes:
            if _absent_or_empty(code, keys.CODE_VALUE) or _absent_or_empty(
                code, keys.CODING_SCHEME_DESIGNATOR
            ):
                return (
                    f"{_name(code_sequence)} has an item without CodeValue/CodingSchemeDesignator"
                )
    text = item.get(description)
    if text is None:
        if not isinstance(codes, list):
            return f"neither {_name(description)} nor {_name(code_sequence)} is present"
    elif len(text) == 0:
        return f"{_name(description)} is empty"
    return None


def _name(t: int) -> str:
    from pydicom.datadict import keyword_for_tag

    return keyword_for_tag(t) or f"({t >> 16:04X},{t & 0xFFFF:04X})"
