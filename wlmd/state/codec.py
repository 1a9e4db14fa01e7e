"""How a UPS is kept in a row: DICOM JSON (PS3.18 F.2) and the indexed columns.

DICOM JSON keeps every VR, sequences and inline binary, is readable with
``sqlite3``/``psql`` when an operator must look, and is the same text on
both backends. The indexed columns are derived from the data set here only,
so they cannot disagree with it.
"""

from __future__ import annotations

import time

from pydicom.dataset import Dataset

from wlmd.ups import table
from wlmd.ups.attributes import text
from wlmd.ups.query import index_datetime

START_DATETIME = table.tag("ScheduledProcedureStepStartDateTime")
PATIENT_ID = table.tag("PatientID")


def encode(ds: Dataset) -> str:
    return ds.to_json()


def decode(data: str) -> Dataset:
    return Dataset.from_json(data)


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
