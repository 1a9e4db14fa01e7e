"""Modality Performed Procedure Step rules (PS3.4 Annex F.7), as pure functions.

The state machine is short: N-CREATE makes an MPPS "IN PROGRESS" (any other
status is refused, 0x0106, F.7.2.1.3); N-SET may change it only while it is
IN PROGRESS, once to "COMPLETED" or "DISCONTINUED"; after that every N-SET
is a processing failure 0x0110 with Error ID 0xA710 (F.7.2.2.4).

Attribute requirements follow Table F.7.2-1 where a wrong answer would hurt:

* N-CREATE: the Type 1 attributes (Scheduled Step Attributes Sequence with a
  Study Instance UID in each item, Performed Procedure Step ID, Performed
  Station AE Title, start date and time, status, Modality) — absent: 0x0120
  (Missing Attribute), empty: 0x0121 (Missing Attribute Value).
* N-SET: only the attributes the table allows to be set (status,
  descriptions, procedure codes, end date/time, comments, discontinuation
  reason, performed protocol and series, ...). Others ("Not allowed": the
  patient and scheduling attributes, the UIDs) are **ignored, not applied**,
  and reported to the caller for the log: some modalities resend the whole
  data set in their N-SET, and refusing it would leave the step IN PROGRESS
  forever in the RIS's eyes.
* COMPLETED or DISCONTINUED: End Date and End Time must be present with a
  value (Final State Type 1), in the N-SET or before; else 0x0120/0x0121.

Type 2 attributes missing at N-CREATE are accepted as they are (many
modalities omit them); the conformance statement says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset

SOP_CLASS = "1.2.840.10008.3.1.2.3.3"

IN_PROGRESS = "IN PROGRESS"
COMPLETED = "COMPLETED"
DISCONTINUED = "DISCONTINUED"
FINAL = frozenset({COMPLETED, DISCONTINUED})

SUCCESS = 0x0000
NO_SUCH_ATTRIBUTE = 0x0105
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
NO_SUCH_SOP_INSTANCE = 0x0112
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
#: F.7.2.2.4: the Error ID with 0x0110 when the step is no longer IN PROGRESS
NO_LONGER_UPDATABLE = 0xA710
NO_LONGER_UPDATABLE_COMMENT = "Performed Procedure Step Object may no longer be updated"


def tag(keyword: str) -> int:
    found = tag_for_keyword(keyword)
    assert found is not None, keyword
    return int(found)


STATUS = tag("PerformedProcedureStepStatus")
SCHEDULED_STEPS = tag("ScheduledStepAttributesSequence")
STUDY_INSTANCE_UID = tag("StudyInstanceUID")
SPS_ID = tag("ScheduledProcedureStepID")
ACCESSION_NUMBER = tag("AccessionNumber")
STATION_AE = tag("PerformedStationAETitle")
END_DATE = tag("PerformedProcedureStepEndDate")
END_TIME = tag("PerformedProcedureStepEndTime")

#: N-CREATE Type 1 at the top level (Table F.7.2-1, "1/1")
CREATE_TYPE_1 = tuple(
    tag(k)
    for k in (
        "ScheduledStepAttributesSequence",
        "PerformedProcedureStepID",
        "PerformedStationAETitle",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "PerformedProcedureStepStatus",
        "Modality",
    )
)

#: The attributes N-SET may set (Table F.7.2-1: every row not "Not allowed")
SETTABLE = frozenset(
    tag(k)
    for k in (
        "SpecificCharacterSet",
        "PerformedProcedureStepStatus",
        "PerformedProcedureStepDescription",
        "PerformedProcedureTypeDescription",
        "ProcedureCodeSequence",
        "ReasonForPerformedProcedureCodeSequence",
        "PerformedProcedureStepEndDate",
        "PerformedProcedureStepEndTime",
        "CommentsOnThePerformedProcedureStep",
        "PerformedProcedureStepDiscontinuationReasonCodeSequence",
        "PerformedProtocolCodeSequence",
        "PerformedSeriesSequence",
        "TotalTimeOfFluoroscopy",
        "TotalNumberOfExposures",
        "EntranceDose",
        "ExposedArea",
        "DistanceSourceToEntrance",
        "CommentsOnRadiationDose",
        "ExposureDoseSequence",
        "BillingProcedureStepSequence",
        "FilmConsumptionSequence",
        "BillingSuppliesAndDevicesSequence",
        "ImageAndFluoroscopyAreaDoseProduct",
        "EntranceDoseInmGy",
        "OrganDose",
        "AnatomicStructureSpaceOrRegionSequence",
    )
)


@dataclass(frozen=True)
class Check:
    """The outcome of a check: a DIMSE status, the offending tags, a reason for the log."""

    status: int
    offending: tuple[int, ...] = ()
    reason: str = ""
    #: the data set to store (N-SET: the stored one with the modification applied)
    dataset: Dataset | None = None
    #: N-SET attributes that may not be set and were left as they were
    ignored: tuple[int, ...] = ()
    error_id: int | None = None

    @property
    def failed(self) -> bool:
        return self.status != SUCCESS


def text_value(ds: Dataset, tag_: int) -> str:
    """An attribute's value as stripped text ("" when absent or empty)."""
    element = ds.get(tag_)
    if element is None or element.value is None:
        return ""
    return str(element.value).strip()


def check_create(ds: Dataset) -> Check:
    """N-CREATE (F.7.2.1): IN PROGRESS, with the Type 1 attributes."""
    missing = [t for t in CREATE_TYPE_1 if t not in ds]
    if missing:
        return Check(MISSING_ATTRIBUTE, tuple(missing), "missing Type 1 attributes")
    empty = [t for t in CREATE_TYPE_1 if t != SCHEDULED_STEPS and not text_value(ds, t)]
    steps = ds[SCHEDULED_STEPS].value or []
    if not steps:
        empty.append(SCHEDULED_STEPS)
    if empty:
        return Check(MISSING_ATTRIBUTE_VALUE, tuple(empty), "empty Type 1 attributes")
    for item in steps:
        if STUDY_INSTANCE_UID not in item:
            return Check(MISSING_ATTRIBUTE, (STUDY_INSTANCE_UID,), "scheduled step without Study")
        if not text_value(item, STUDY_INSTANCE_UID):
            return Check(MISSING_ATTRIBUTE_VALUE, (STUDY_INSTANCE_UID,), "empty Study UID")
    status = text_value(ds, STATUS)
    if status != IN_PROGRESS:
        return Check(INVALID_ATTRIBUTE_VALUE, (STATUS,), f"N-CREATE with status {status!r}")
    return Check(SUCCESS, dataset=ds)


def check_set(stored: Dataset, modification: Dataset) -> Check:
    """N-SET (F.7.2.2): only IN PROGRESS steps; settable attributes applied, others ignored."""
    current = text_value(stored, STATUS)
    if current != IN_PROGRESS:
        return Check(
            PROCESSING_FAILURE,
            reason=f"N-SET of a {current} step",
            error_id=NO_LONGER_UPDATABLE,
        )
    if STATUS in modification:
        wanted = text_value(modification, STATUS)
        if wanted not in (IN_PROGRESS, *FINAL):
            return Check(INVALID_ATTRIBUTE_VALUE, (STATUS,), f"no such status {wanted!r}")
    ignored = tuple(e.tag for e in modification if e.tag not in SETTABLE)
    merged = Dataset()
    merged.update(stored)
    for element in modification:
        if element.tag in SETTABLE:
            merged[element.tag] = element
    if text_value(merged, STATUS) in FINAL:
        absent = [t for t in (END_DATE, END_TIME) if t not in merged]
        if absent:
            return Check(MISSING_ATTRIBUTE, tuple(absent), "final state without end date/time")
        empty = [t for t in (END_DATE, END_TIME) if not text_value(merged, t)]
        if empty:
            return Check(MISSING_ATTRIBUTE_VALUE, tuple(empty), "final state without end values")
    return Check(SUCCESS, dataset=merged, ignored=ignored)


@dataclass(frozen=True)
class Link:
    """Which worklist entry an MPPS performs: its first scheduled step's identity."""

    study_instance_uid: str
    sps_id: str
    accession_number: str


def link(ds: Dataset) -> Link:
    """The scheduled step an MPPS names (the first item of the Scheduled Step Attributes
    Sequence: StudyInstanceUID + SPS ID, or the accession number)."""
    steps = ds.get(SCHEDULED_STEPS)
    item = steps.value[0] if steps is not None and steps.value else Dataset()
    return Link(
        text_value(item, STUDY_INSTANCE_UID),
        text_value(item, SPS_ID),
        text_value(item, ACCESSION_NUMBER),
    )
