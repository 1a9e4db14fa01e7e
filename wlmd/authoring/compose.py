"""Turning a submitted data set into the bytes of a worklist file.

Three decisions are made here, each once:

- **Generated values.** Sites expect the worklist to assign what the RIS did
  not (dcm4chee-arc's MWL REST service does the same): StudyInstanceUID (a
  UID under a configurable root, by default pydicom's ``2.25.<UUID>`` form,
  PS3.5 B.2), RequestedProcedureID, ScheduledProcedureStepID and
  AccessionNumber (SH, at most 16 characters). A generated value is checked
  against the values already used in the area (:class:`UsedValues`).
- **Specific Character Set** for the values given: none when every text is
  ASCII (the default repertoire), ``ISO_IR 100`` when Latin-1 holds them,
  else ``ISO_IR 192`` (UTF-8) — each read back by
  :mod:`wlmd.worklist.charset` as the same text (PS3.3 C.12.1.1.2).
- **The order identity** that names the file: StudyInstanceUID with the SPS
  ID when the submission has both, else the AccessionNumber; a repeated
  submission of the same order gets the same name and replaces the file.
  The name is a hash: deterministic and safe for any file system.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from wlmd import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from wlmd.authoring.errors import BadInput
from wlmd.worklist.layout import WORKLIST_SUFFIX

#: The "storage" SOP class of a worklist file's meta (as examples/make_sample_db.py).
MWL_FIND_SOP_CLASS = "1.2.840.10008.5.1.4.31"

#: VRs whose values Specific Character Set applies to (PS3.5 6.1.2.3).
CHARSET_VRS = frozenset({"PN", "LO", "SH", "ST", "LT", "UT", "UC"})

#: Latin-1 and UTF-8 as (0008,0005) names them (PS3.3 C.12.1.1.2).
LATIN_1 = "ISO_IR 100"
UTF_8 = "ISO_IR 192"

_UID_ROOT = re.compile(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*")
_ID_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I/O: read aloud at a modality
_ID_LENGTH = 10  # about 51 bits: a collision is a curiosity, and checked anyway
_MAX_SH = 16


@dataclass(frozen=True, slots=True)
class Generation:
    """Which values are generated when missing, and how (a site's configuration)."""

    study_instance_uid: bool = True
    requested_procedure_id: bool = True
    sps_id: bool = True
    accession_number: bool = True
    #: UID root for StudyInstanceUID; None: ``2.25.<UUID>``
    uid_root: str | None = None
    #: prefix of generated IDs (at most 6 characters, SH)
    id_prefix: str = ""

    def __post_init__(self) -> None:
        if self.uid_root is not None and (
            not _UID_ROOT.fullmatch(self.uid_root) or len(self.uid_root) > 40
        ):
            raise BadInput(f"bad UID root {self.uid_root!r}: digits and dots, at most 40")
        if len(self.id_prefix) > _MAX_SH - _ID_LENGTH or not self.id_prefix.isascii():
            raise BadInput(f"bad ID prefix {self.id_prefix!r}: at most 6 ASCII characters")


#: The generated attributes: (keyword, inside the SPS item).
GENERATED = (
    ("StudyInstanceUID", False),
    ("RequestedProcedureID", False),
    ("AccessionNumber", False),
    ("ScheduledProcedureStepID", True),
)
GENERATED_KEYWORDS = tuple(keyword for keyword, _ in GENERATED)


@dataclass(slots=True)
class UsedValues:
    """Values of the generated attributes already in an area (by keyword)."""

    by_keyword: dict[str, set[str]] = field(
        default_factory=lambda: {k: set() for k in GENERATED_KEYWORDS}
    )

    def add(self, keyword: str, value: str) -> None:
        if value:
            self.by_keyword[keyword].add(value)

    def taken(self, keyword: str, value: str) -> bool:
        return value in self.by_keyword[keyword]


def sps_item(ds: Dataset) -> Dataset | None:
    """The (first) Scheduled Procedure Step item, None without one."""
    sequence = ds.get("ScheduledProcedureStepSequence")
    if not sequence:
        return None
    item = sequence[0]
    return item if isinstance(item, Dataset) else None


def value_of(ds: Dataset, keyword: str, in_sps: bool = False) -> str:
    """A single text value of the data set (or its SPS item), "" when absent or empty."""
    holder = sps_item(ds) if in_sps else ds
    if holder is None:
        return ""
    value = holder.get(keyword)
    return "" if value is None else str(value).strip()


def fill_generated(
    ds: Dataset, generation: Generation, used: UsedValues, previous: Dataset | None = None
) -> dict[str, str]:
    """Fill the missing generated attributes in place; returns what was filled.

    ``previous`` is the entry this one replaces: its values are kept (a
    resubmitted order keeps its StudyInstanceUID), else a new value is made.
    """
    wanted = {
        "StudyInstanceUID": generation.study_instance_uid,
        "RequestedProcedureID": generation.requested_procedure_id,
        "AccessionNumber": generation.accession_number,
        "ScheduledProcedureStepID": generation.sps_id,
    }
    filled: dict[str, str] = {}
    for keyword, in_sps in GENERATED:
        if value_of(ds, keyword, in_sps) or not wanted[keyword]:
            continue
        holder = sps_item(ds) if in_sps else ds
        if holder is None:
            continue  # no SPS item: the completeness check says so
        value = value_of(previous, keyword, in_sps) if previous is not None else ""
        if not value:
            value = _new_value(keyword, generation, used)
        setattr(holder, keyword, value)
        used.add(keyword, value)
        filled[keyword] = value
    return filled


def _new_value(keyword: str, generation: Generation, used: UsedValues) -> str:
    while True:
        if keyword == "StudyInstanceUID":
            root = generation.uid_root
            value = str(generate_uid(None if root is None else f"{root}."))
        else:
            value = generation.id_prefix + random_id()
        if not used.taken(keyword, value):
            return value


def random_id() -> str:
    """Ten characters of :data:`_ID_ALPHABET`, from the system's random source."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def order_name(ds: Dataset) -> str | None:
    """The file name of the order ``ds`` describes, None when it has no identity yet.

    StudyInstanceUID + SPS ID when both are given, else AccessionNumber.
    """
    study = value_of(ds, "StudyInstanceUID")
    step = value_of(ds, "ScheduledProcedureStepID", in_sps=True)
    if study and step:
        identity = f"study-step\\{study}\\{step}"
    elif accession := value_of(ds, "AccessionNumber"):
        identity = f"accession\\{accession}"
    else:
        return None
    return name_for(identity)


def name_for(identity: str) -> str:
    """``order-<32 hex digits>.wl``: the first 128 bits of SHA-256 of the identity."""
    return f"order-{hashlib.sha256(identity.encode('utf-8')).hexdigest()[:32]}{WORKLIST_SUFFIX}"


def _texts(ds: Dataset) -> Iterator[str]:
    for element in ds:
        if element.VR == "SQ":
            for item in element.value or []:
                yield from _texts(item)
        elif element.VR in CHARSET_VRS and element.value is not None:
            values = element.value if element.VM > 1 else [element.value]
            for value in values:
                yield value.decode("latin-1") if isinstance(value, bytes) else str(value)


def character_set_for(ds: Dataset) -> str | None:
    """The Specific Character Set the values need: None (ASCII), Latin-1 or UTF-8."""
    needed: str | None = None
    for text in _texts(ds):
        if text.isascii():
            continue
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            return UTF_8
        needed = LATIN_1
    return needed


def prepared(ds: Dataset) -> Dataset:
    """A copy of ``ds`` without file meta and group lengths, values decoded to text."""
    out = Dataset()
    for element in ds:
        if element.tag.group <= 0x0002 or element.tag.element == 0:
            continue
        if element.VR == "SQ":
            items = [prepared(item) for item in element.value or []]
            out.add(DataElement(element.tag, "SQ", Sequence(items)))
        else:
            out.add(DataElement(element.tag, element.VR, element.value))
    return out


def encode(ds: Dataset) -> bytes:
    """The worklist file for ``ds`` (decoded values): Part 10, Explicit VR Little Endian.

    Specific Character Set is set (or removed) for the values, replacing any
    given one, so the bytes always say what they are. Written with pydicom's
    element writers directly: ``dcmwrite`` deep-copies the data set first,
    which was a third of an import's time.
    """
    charset = character_set_for(ds)
    out = Dataset()
    out.update(ds)
    if charset is None:
        if "SpecificCharacterSet" in out:
            del out.SpecificCharacterSet
    else:
        out.SpecificCharacterSet = charset
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(MWL_FIND_SOP_CLASS)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    buffer.write(b"\0" * 128 + b"DICM")
    try:
        write_file_meta_info(buffer, meta, enforce_standard=True)
        write_dataset(buffer, out)
    except Exception as exc:  # pydicom raises many types for values it cannot encode
        raise BadInput(f"cannot encode the entry: {type(exc).__name__}: {exc}") from exc
    return buffer.getvalue()
