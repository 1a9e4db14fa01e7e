"""wlmd --request-filter: force the Modality for modalities that send none (or the wrong one).

An old ultrasound that leaves Modality empty gets every CT and MR patient of
the department as well. Each calling AE title listed here always queries its
own modality; a calling AE title not listed is refused, so a new device
cannot see the whole worklist by accident (remove the last line to allow it).
"""

from pydicom.dataset import Dataset

MODALITY_OF = {"US_ROOM3": "US", "CT01": "CT", "MR_3T": "MR"}


def request_filter(query: Dataset, request) -> Dataset | bool:
    modality = MODALITY_OF.get(request.calling_ae)
    if modality is None:
        return False  # refused: answered 0xC000 "refused by the request filter"
    steps = query.get("ScheduledProcedureStepSequence")
    if not steps:
        query.ScheduledProcedureStepSequence = [Dataset()]
        steps = query.ScheduledProcedureStepSequence
    steps[0].Modality = modality
    return query
