"""wlmd --request-filter: ignore the Scheduled Station AE Title some modalities fill in wrongly.

A modality configured with another station's AE title (or its own calling AE
title where the RIS books a different one) never sees its patients. For the
calling AE titles listed here the station key is emptied, so the query
matches on the other keys (modality, date) instead.
"""

from pydicom.dataset import Dataset

CALLERS = {"CT_OLD", "US_PORTABLE"}


def request_filter(query: Dataset, request) -> Dataset | None:
    if request.calling_ae not in CALLERS:
        return None  # unchanged
    for step in query.get("ScheduledProcedureStepSequence", []):
        if "ScheduledStationAETitle" in step:
            step.ScheduledStationAETitle = ""
    return query
