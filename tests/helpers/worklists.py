"""Build worklist files (``*.wl``) and worklist areas with pydicom.

Fixtures use these helpers instead of copying binary files into the repository::

    entry = complete_entry(PatientID="P1", Modality="CT")
    make_area(tmp_path, "WLMD", {"p1.wl": entry})

``complete_entry`` gives an entry with every Return Key Type 1 attribute of PS3.4
Table K.6-1 that wlmscpfs checks before serving a file (``--enable-file-reject``),
so it is served by both servers unless a test removes something on purpose.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, keyword_dict, tag_for_keyword
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

#: Attributes of the one Scheduled Procedure Step item, by keyword.
SPS_KEYWORDS = frozenset(
    {
        "ScheduledStationAETitle",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepStartTime",
        "ScheduledProcedureStepEndDate",
        "ScheduledProcedureStepEndTime",
        "Modality",
        "ScheduledPerformingPhysicianName",
        "ScheduledProcedureStepDescription",
        "ScheduledProtocolCodeSequence",
        "ScheduledProcedureStepID",
        "ScheduledStationName",
        "ScheduledProcedureStepLocation",
        "PreMedication",
        "ScheduledProcedureStepStatus",
        "CommentsOnTheScheduledProcedureStep",
        "RequestedContrastAgent",
    }
)

TEXT_VRS = frozenset(
    {
        "AE",
        "AS",
        "CS",
        "DA",
        "DS",
        "DT",
        "IS",
        "LO",
        "LT",
        "PN",
        "SH",
        "ST",
        "TM",
        "UC",
        "UI",
        "UR",
        "UT",
    }
)

#: Placeholder meaning "remove this attribute" in ``complete_entry`` overrides.
DROP = object()

MWL_SOP_CLASS = UID("1.2.840.10008.5.1.4.31")


def _default_top() -> dict[str, Any]:
    return {
        "SpecificCharacterSet": "ISO_IR 100",
        "AccessionNumber": "ACC0001",
        "ReferringPhysicianName": "REFERRER^RITA",
        "ReferencedStudySequence": [],
        "ReferencedPatientSequence": [],
        "PatientName": "DOE^JOHN",
        "PatientID": "PID0001",
        "IssuerOfPatientID": "HOSP",
        "PatientBirthDate": "19700101",
        "PatientSex": "M",
        "StudyInstanceUID": "1.2.826.0.1.3680043.10.1234.1",
        "RequestingPhysician": "REQUESTER^RON",
        "RequestedProcedureDescription": "CT HEAD",
        "RequestedProcedureID": "RP0001",
        "RequestedProcedurePriority": "ROUTINE",
        "AdmissionID": "ADM0001",
    }


def _default_sps() -> dict[str, Any]:
    return {
        "ScheduledStationAETitle": "STATION1",
        "ScheduledProcedureStepStartDate": "20240115",
        "ScheduledProcedureStepStartTime": "093000",
        "Modality": "CT",
        "ScheduledPerformingPhysicianName": "PERFORMER^PAT",
        "ScheduledProcedureStepDescription": "CT HEAD WITHOUT CONTRAST",
        "ScheduledProcedureStepID": "SPS0001",
        "ScheduledStationName": "CTROOM1",
        "ScheduledProcedureStepLocation": "ROOM 1",
    }


def _tag_of(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"unknown DICOM keyword {keyword!r}")
    return tag


def set_value(ds: Dataset, keyword: str, value: Any) -> None:
    """Set ``keyword`` on ``ds``; ``DROP`` removes it, a list of Datasets makes a sequence.

    An empty value (``""``/``None``) keeps the attribute with zero length ("blanked").
    """
    if value is DROP:
        if keyword in ds:
            del ds[keyword]
        return
    vr = dictionary_VR(_tag_of(keyword))
    if value == "" and vr not in TEXT_VRS:
        value = None  # an empty binary value (US, UL, FD, …)
    if vr == "SQ":
        ds[keyword] = DataElement(_tag_of(keyword), "SQ", Sequence(list(value or [])))
        return
    with warnings.catch_warnings():
        # queries and broken files need invalid values (bad DA, wildcards in CS, …)
        warnings.simplefilter("ignore", UserWarning)
        ds[keyword] = DataElement(_tag_of(keyword), vr, value)


def complete_entry(**overrides: Any) -> Dataset:
    """A worklist entry complete per PS3.4 Table K.6-1, with ``overrides`` applied.

    Keywords of Scheduled Procedure Step attributes (``Modality``,
    ``ScheduledStationAETitle``, …) are applied inside the single
    ScheduledProcedureStepSequence item; everything else at the top level. Use the
    value ``DROP`` to remove an attribute, ``""`` to keep it but empty. Passing
    ``ScheduledProcedureStepSequence=[...]`` replaces the whole sequence.
    """
    for keyword in overrides:
        if keyword not in keyword_dict:
            raise KeyError(f"unknown DICOM keyword {keyword!r}")
    top = _default_top()
    sps = _default_sps()
    for keyword, value in overrides.items():
        if keyword in SPS_KEYWORDS:
            sps[keyword] = value
        else:
            top[keyword] = value

    item = Dataset()
    for keyword, value in sps.items():
        set_value(item, keyword, value)
    ds = Dataset()
    for keyword, value in top.items():
        set_value(ds, keyword, value)
    if "ScheduledProcedureStepSequence" not in overrides:
        set_value(ds, "ScheduledProcedureStepSequence", [item])
    return ds


def raw_element(tag: int | BaseTag | str, vr: str, value: bytes) -> RawDataElement:
    """An element whose bytes are written verbatim (e.g. Latin-1 text without charset)."""
    if isinstance(tag, str):
        tag = _tag_of(tag)
    if len(value) % 2:
        value += b"\x00" if vr == "UI" else b" "
    return RawDataElement(Tag(tag), vr, len(value), value, 0, False, True)


_TRANSFER_SYNTAXES = {
    "explicit": ExplicitVRLittleEndian,
    "implicit": ImplicitVRLittleEndian,
    "big": ExplicitVRBigEndian,
    "deflated": DeflatedExplicitVRLittleEndian,
}


def write_wl(path: Path | str, ds: Dataset, transfer_syntax: str | UID = "explicit") -> Path:
    """Write ``ds`` as a DICOM Part 10 file (file meta + data set) and return the path.

    ``transfer_syntax`` is ``explicit`` (default), ``implicit``, ``big``, ``deflated``
    or a transfer syntax UID.
    """
    path = Path(path)
    ts = UID(_TRANSFER_SYNTAXES.get(str(transfer_syntax), transfer_syntax))
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MWL_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = UID(
        f"1.2.826.0.1.3680043.10.1234.99.{zlib.crc32(path.name.encode())}"
    )
    meta.TransferSyntaxUID = ts
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    out = Dataset()
    out.update(ds)
    out.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    out.save_as(path, enforce_file_format=True)
    return path


def make_area(
    root: Path | str,
    aet: str,
    entries: Mapping[str, Dataset | bytes] | Iterable[Dataset],
    *,
    lockfile: bool = True,
    transfer_syntax: str = "explicit",
) -> Path:
    """Create ``root/aet/`` with a ``lockfile`` and one file per entry; return the directory.

    ``entries`` is either a mapping of file name to Dataset (written with ``write_wl``)
    or raw bytes (written as they are, for corrupt files), or an iterable of Datasets
    which become ``entry001.wl``, ``entry002.wl``, …
    """
    area = Path(root) / aet
    area.mkdir(parents=True, exist_ok=True)
    if lockfile:
        (area / "lockfile").touch()
    if not isinstance(entries, Mapping):
        entries = {f"entry{n:03d}.wl": ds for n, ds in enumerate(entries, start=1)}
    for name, content in entries.items():
        target = area / name
        if isinstance(content, bytes):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        else:
            write_wl(target, content, transfer_syntax)
    return area


def query(**keys: Any) -> Dataset:
    """A C-FIND identifier from keywords (``None`` → empty value, list of Datasets → SQ).

    ``sps=dict(...)`` builds a ScheduledProcedureStepSequence with one item from the dict.
    """
    ds = Dataset()
    sps = keys.pop("sps", None)
    for keyword, value in keys.items():
        set_value(ds, keyword, "" if value is None else value)
    if sps is not None:
        item = Dataset()
        for keyword, value in sps.items():
            set_value(item, keyword, "" if value is None else value)
        set_value(ds, "ScheduledProcedureStepSequence", [item])
    return ds
