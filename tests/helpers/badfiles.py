"""Worklist files the server skips, one per skip reason, for the authoring tests.

Each case writes one file named ``<case>.wl`` into an area and says which
reason the server gives (a prefix of it: pydicom's exception texts vary).
``CONTENT_CASES`` are data sets (``wlmctl add`` must refuse them with the
same reason); ``FILE_CASES`` are files whose bytes or kind are wrong.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, complete_entry, write_wl

_CODE = {"CodeValue": "C1", "CodingSchemeDesignator": "99X", "CodeMeaning": "M"}
_REF = {"ReferencedSOPClassUID": "1.2.3", "ReferencedSOPInstanceUID": "1.2.3.4"}


def _item(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def _two_steps() -> Dataset:
    ds = complete_entry()
    ds.ScheduledProcedureStepSequence.append(ds.ScheduledProcedureStepSequence[0])
    return ds


#: case -> (data set, the server's reason)
CONTENT_CASES: dict[str, tuple[Callable[[], Dataset], str]] = {
    "no-sps": (
        lambda: complete_entry(ScheduledProcedureStepSequence=DROP),
        "incomplete worklist file rejected: ScheduledProcedureStepSequence is missing or "
        "does not have exactly one item",
    ),
    "two-sps": (
        _two_steps,
        "incomplete worklist file rejected: ScheduledProcedureStepSequence is missing or "
        "does not have exactly one item",
    ),
    **{
        f"no-{keyword}": (
            (lambda k=keyword: complete_entry(**{k: DROP})),
            f"incomplete worklist file rejected: ScheduledProcedureStepSequence > {keyword} "
            "is missing or empty",
        )
        for keyword in (
            "ScheduledStationAETitle",
            "ScheduledProcedureStepStartDate",
            "ScheduledProcedureStepStartTime",
            "Modality",
            "ScheduledProcedureStepID",
        )
    },
    **{
        f"empty-{keyword}": (
            (lambda k=keyword: complete_entry(**{k: ""})),
            f"incomplete worklist file rejected: {keyword} is missing or empty",
        )
        for keyword in ("RequestedProcedureID", "StudyInstanceUID", "PatientName", "PatientID")
    },
    "empty-protocol-codes": (
        lambda: complete_entry(ScheduledProtocolCodeSequence=[]),
        "incomplete worklist file rejected: ScheduledProtocolCodeSequence is empty",
    ),
    "protocol-code-incomplete": (
        lambda: complete_entry(ScheduledProtocolCodeSequence=[_item(CodeValue="C1")]),
        "incomplete worklist file rejected: ScheduledProtocolCodeSequence has an item without "
        "CodeValue/CodingSchemeDesignator",
    ),
    "no-step-description": (
        lambda: complete_entry(ScheduledProcedureStepDescription=DROP),
        "incomplete worklist file rejected: neither ScheduledProcedureStepDescription nor "
        "ScheduledProtocolCodeSequence is present",
    ),
    "empty-step-description": (
        lambda: complete_entry(ScheduledProcedureStepDescription=""),
        "incomplete worklist file rejected: ScheduledProcedureStepDescription is empty",
    ),
    "empty-procedure-codes": (
        lambda: complete_entry(RequestedProcedureCodeSequence=[]),
        "incomplete worklist file rejected: RequestedProcedureCodeSequence is empty",
    ),
    "procedure-code-incomplete": (
        lambda: complete_entry(
            RequestedProcedureCodeSequence=[_item(CodingSchemeDesignator="99X")]
        ),
        "incomplete worklist file rejected: RequestedProcedureCodeSequence has an item "
        "without CodeValue/CodingSchemeDesignator",
    ),
    "no-procedure-description": (
        lambda: complete_entry(RequestedProcedureDescription=DROP),
        "incomplete worklist file rejected: neither RequestedProcedureDescription nor "
        "RequestedProcedureCodeSequence is present",
    ),
    "empty-procedure-description": (
        lambda: complete_entry(RequestedProcedureDescription=""),
        "incomplete worklist file rejected: RequestedProcedureDescription is empty",
    ),
    "study-reference-incomplete": (
        lambda: complete_entry(ReferencedStudySequence=[_item(ReferencedSOPClassUID="1.2")]),
        "incomplete worklist file rejected: ReferencedStudySequence has an item without "
        "ReferencedSOPClassUID/InstanceUID",
    ),
    "patient-reference-incomplete": (
        lambda: complete_entry(ReferencedPatientSequence=[_item(ReferencedSOPInstanceUID="1.2.3")]),
        "incomplete worklist file rejected: ReferencedPatientSequence has an item without "
        "ReferencedSOPClassUID/InstanceUID",
    ),
}

#: Served: the code sequences and references complete, descriptions absent.
SERVED_VARIANTS: dict[str, Callable[[], Dataset]] = {
    "codes-instead-of-descriptions": lambda: complete_entry(
        ScheduledProcedureStepDescription=DROP,
        ScheduledProtocolCodeSequence=[_item(**_CODE)],
        RequestedProcedureDescription=DROP,
        RequestedProcedureCodeSequence=[_item(**_CODE)],
        ReferencedStudySequence=[_item(**_REF)],
    ),
}


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _truncated(path: Path) -> None:
    write_wl(path, complete_entry())
    data = path.read_bytes()
    _write(path, data[: len(data) - 7])


def _no_data_set(path: Path) -> None:
    # a preamble, DICM and a file meta group only
    write_wl(path, Dataset())


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _directory(path: Path) -> None:
    path.mkdir()


def _huge(path: Path) -> None:
    with open(path, "wb") as handle:
        handle.truncate(64 * 1024 * 1024 + 1)


def _outside_link(path: Path) -> None:
    target = path.parent.parent / "outside-target.dcm"
    write_wl(target, complete_entry())
    path.symlink_to(target)


#: case -> (writer of the file at the given path, the server's reason or its start)
FILE_CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "empty-file": (lambda p: _write(p, b""), "empty file (0 bytes)"),
    "not-dicom": (
        lambda p: _write(p, b"hello, this is not DICOM at all\n"),
        "not a DICOM file (no DICM preamble, no data set)",
    ),
    "unreadable": (
        # no preamble, group 0010 (DCMTK's rule lets it through), then an SQ of
        # undefined length that ends in the middle of an item tag
        lambda p: _write(
            p,
            b"\x10\x00\x10\x00PN\x08\x00DOE^JOHN\x10\x00\x20\x00SQ\x00\x00\xff\xff\xff\xff\x01\x02",
        ),
        "not a readable DICOM file (",
    ),
    "truncated": (_truncated, "corrupt DICOM data ("),
    "no-data-set": (_no_data_set, "contains no DICOM data set (empty or not DICOM)"),
    "fifo": (_fifo, "not a regular file"),
    "directory": (_directory, "not a regular file"),
    "huge": (_huge, "larger than 64 MiB"),
    "outside-link": (_outside_link, "symbolic link to "),
}


def make_bad_area(area: Path) -> dict[str, str]:
    """Every case as ``<case>.wl`` in ``area`` (created with a lockfile); name -> reason."""
    area.mkdir(parents=True, exist_ok=True)
    (area / "lockfile").touch()
    expected = {}
    for case, (build, reason) in CONTENT_CASES.items():
        write_wl(area / f"{case}.wl", build())
        expected[f"{case}.wl"] = reason
    for case, (writer, reason) in FILE_CASES.items():
        writer(area / f"{case}.wl")
        expected[f"{case}.wl"] = reason
    return expected
