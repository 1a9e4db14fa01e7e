"""wlmd --request-filter: widen a one-day date query to include the next day's early hours.

A modality that asks for "today" (SPS Start Date = YYYYMMDD) misses a
procedure booked for 00:30 tomorrow by a night shift. A single date becomes
the range today-tomorrow; ranges and empty dates are left alone.
"""

import datetime as dt

from pydicom.dataset import Dataset


def request_filter(query: Dataset, request) -> Dataset | None:
    for step in query.get("ScheduledProcedureStepSequence", []):
        value = str(step.get("ScheduledProcedureStepStartDate", "") or "")
        if len(value) == 8 and value.isdigit():
            day = dt.datetime.strptime(value, "%Y%m%d").date()
            step.ScheduledProcedureStepStartDate = f"{value}-{day + dt.timedelta(days=1):%Y%m%d}"
    return query
