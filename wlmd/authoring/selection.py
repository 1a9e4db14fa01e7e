"""Which entries a listing (or a removal) is about: exact IDs, modality, station, dates.

The REST API's query parameters and ``wlmctl list``'s filters are the same
few: PatientID, AccessionNumber, Modality, ScheduledStationAETitle and a
range of SPS start dates. Values compare with the decoded text the server
matches on (:attr:`WorklistEntry.root_text`, ``sps_text``), exactly and
case-sensitively as single value matching (PS3.4 C.2.2.2.1); dates
inclusively as range matching (C.2.2.2.5).
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass

from wlmd.authoring.errors import BadInput
from wlmd.worklist import keys
from wlmd.worklist.entry import WorklistEntry

ACCESSION_NUMBER = keys.tag("AccessionNumber")


@dataclass(frozen=True, slots=True)
class Selection:
    """Conditions that all must hold; None means "any"."""

    patient_id: str | None = None
    accession: str | None = None
    modality: str | None = None
    station: str | None = None
    #: SPS start dates, YYYYMMDD, inclusive
    date_from: str | None = None
    date_to: str | None = None

    def matches(self, entry: WorklistEntry) -> bool:
        root = entry.root_text
        if self.patient_id is not None and root.get(keys.PATIENT_ID) != self.patient_id:
            return False
        if self.accession is not None and root.get(ACCESSION_NUMBER) != self.accession:
            return False
        steps = entry.sps_text or []
        step = steps[0] if steps else None
        if self.modality is not None and (step is None or step.get(keys.MODALITY) != self.modality):
            return False
        if self.station is not None and (
            step is None or step.get(keys.SCHEDULED_STATION_AE_TITLE) != self.station
        ):
            return False
        if self.date_from is None and self.date_to is None:
            return True
        date = (step.get(keys.SPS_START_DATE) or "") if step is not None else ""
        if not date:
            return False
        return (self.date_from is None or date >= self.date_from) and (
            self.date_to is None or date <= self.date_to
        )


def sps_start_date(entry: WorklistEntry) -> str:
    """The first SPS item's start date as the server reads it (YYYYMMDD), or ""."""
    views = entry.sps_text or []
    return (views[0].get(keys.SPS_START_DATE) or "").strip() if views else ""


_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")


def parse_date(text: str) -> _dt.date:
    """``2026-12-02``, ``20261202``, ``today``, ``tomorrow`` or ``yesterday``."""
    text = text.strip()
    relative = {"today": 0, "tomorrow": 1, "yesterday": -1}
    if text.lower() in relative:
        return _dt.date.today() + _dt.timedelta(days=relative[text.lower()])
    match = _DATE.fullmatch(text)
    if match:
        try:
            return _dt.date(*(int(g) for g in match.groups()))
        except ValueError:
            pass
    raise BadInput(f"bad date {text!r} (YYYY-MM-DD, YYYYMMDD, today, tomorrow, yesterday)")


def date_range(text: str) -> tuple[str | None, str | None]:
    """``DATE``, ``DATE..DATE`` (either side may be empty) or DICOM's ``YYYYMMDD-YYYYMMDD``
    (either side may be empty, PS3.4 C.2.2.2.5) as inclusive YYYYMMDD bounds."""
    text = text.strip()
    dicom = re.fullmatch(r"(\d{8})?-(\d{8})?", text)
    if ".." in text:
        first, _, second = text.partition("..")
    elif dicom and text != "-":
        first, second = dicom.group(1) or "", dicom.group(2) or ""
    else:
        day = parse_date(text).strftime("%Y%m%d")
        return day, day
    low = parse_date(first).strftime("%Y%m%d") if first.strip() else None
    high = parse_date(second).strftime("%Y%m%d") if second.strip() else None
    return low, high
