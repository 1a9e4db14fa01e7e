"""Which attributes wlmd matches on and returns, and the C-FIND statuses it uses.

The lists reproduce wlmscpfs 3.6.7 exactly (its man page, "DICOM Conformance",
and dcmwlm's ``IsSupportedMatchingKeyAttribute``/``IsSupportedReturnKeyAttribute``):
an attribute not listed here is removed from the request and the pending
responses carry 0xFF01, as wlmscpfs does.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.tag import Tag

# --- C-FIND statuses (PS3.4 C.4.1.1.4, K.4.1.1.4) --------------------------------
SUCCESS = 0x0000
PENDING = 0xFF00
PENDING_OPTIONAL_KEYS_UNSUPPORTED = 0xFF01
CANCEL = 0xFE00
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
UNABLE_TO_PROCESS = 0xC000


def tag(keyword: str) -> int:
    """The integer tag of a pydicom keyword (fails loudly on a typo)."""
    return int(Tag(keyword))


# --- attribute tags used by the logic ------------------------------------------------
SPECIFIC_CHARACTER_SET = tag("SpecificCharacterSet")
SCHEDULED_PROCEDURE_STEP_SEQUENCE = tag("ScheduledProcedureStepSequence")
SCHEDULED_STATION_AE_TITLE = tag("ScheduledStationAETitle")
SPS_START_DATE = tag("ScheduledProcedureStepStartDate")
SPS_START_TIME = tag("ScheduledProcedureStepStartTime")
MODALITY = tag("Modality")
SCHEDULED_PERFORMING_PHYSICIAN_NAME = tag("ScheduledPerformingPhysicianName")
SPS_DESCRIPTION = tag("ScheduledProcedureStepDescription")
SPS_ID = tag("ScheduledProcedureStepID")
SCHEDULED_PROTOCOL_CODE_SEQUENCE = tag("ScheduledProtocolCodeSequence")
REQUESTED_PROCEDURE_DESCRIPTION = tag("RequestedProcedureDescription")
REQUESTED_PROCEDURE_CODE_SEQUENCE = tag("RequestedProcedureCodeSequence")
REQUESTED_PROCEDURE_ID = tag("RequestedProcedureID")
REFERENCED_STUDY_SEQUENCE = tag("ReferencedStudySequence")
REFERENCED_PATIENT_SEQUENCE = tag("ReferencedPatientSequence")
REFERENCED_SOP_CLASS_UID = tag("ReferencedSOPClassUID")
REFERENCED_SOP_INSTANCE_UID = tag("ReferencedSOPInstanceUID")
CODE_VALUE = tag("CodeValue")
CODING_SCHEME_DESIGNATOR = tag("CodingSchemeDesignator")
CODING_SCHEME_VERSION = tag("CodingSchemeVersion")
CODE_MEANING = tag("CodeMeaning")
STUDY_INSTANCE_UID = tag("StudyInstanceUID")
STUDY_DATE = tag("StudyDate")
STUDY_TIME = tag("StudyTime")
PATIENT_NAME = tag("PatientName")
PATIENT_ID = tag("PatientID")
PREGNANCY_STATUS = tag("PregnancyStatus")

#: PregnancyStatus is the one binary (US) return key; wlmscpfs returns 4
#: ("unknown", PS3.3 C.7.1.3) when the worklist file lacks it.
PREGNANCY_STATUS_UNKNOWN = 4


@dataclass(frozen=True)
class KeySpec:
    """How one single-valued matching key is matched (PS3.4 C.2.2.2).

    ``wildcards`` says whether ``*``/``?`` act as wildcards: wlmscpfs disables
    them for PatientID, Modality and ScheduledStationAETitle (matched literally).
    """

    tag: int
    wildcards: bool


@dataclass(frozen=True)
class MatchingLevel:
    """Matching keys of one dataset level: plain keys, date+time pairs, sequences."""

    keys: tuple[KeySpec, ...]
    date_time_pairs: tuple[tuple[int, int], ...]
    sequences: tuple[tuple[int, MatchingLevel], ...]


#: Matching keys inside the Scheduled Procedure Step item.
SPS_MATCHING = MatchingLevel(
    keys=(
        KeySpec(SCHEDULED_STATION_AE_TITLE, wildcards=False),
        KeySpec(MODALITY, wildcards=False),
        KeySpec(SCHEDULED_PERFORMING_PHYSICIAN_NAME, wildcards=True),
    ),
    date_time_pairs=((SPS_START_DATE, SPS_START_TIME),),
    sequences=(),
)

#: Top-level matching keys, in wlmscpfs's order.
ROOT_MATCHING = MatchingLevel(
    keys=(
        KeySpec(PATIENT_NAME, wildcards=True),
        KeySpec(tag("ResponsiblePerson"), wildcards=True),
        KeySpec(tag("ResponsiblePersonRole"), wildcards=True),
        KeySpec(PATIENT_ID, wildcards=False),
        KeySpec(tag("AccessionNumber"), wildcards=True),
        KeySpec(REQUESTED_PROCEDURE_ID, wildcards=True),
        KeySpec(tag("ReferringPhysicianName"), wildcards=True),
        KeySpec(tag("PatientSex"), wildcards=True),
        KeySpec(tag("RequestingPhysician"), wildcards=True),
        KeySpec(tag("AdmissionID"), wildcards=True),
        KeySpec(tag("RequestedProcedurePriority"), wildcards=True),
        KeySpec(tag("PatientBirthDate"), wildcards=True),
        KeySpec(tag("IssuerOfPatientID"), wildcards=True),
    ),
    date_time_pairs=((STUDY_DATE, STUDY_TIME),),
    sequences=((SCHEDULED_PROCEDURE_STEP_SEQUENCE, SPS_MATCHING),),
)


def _tags(*keywords: str) -> frozenset[int]:
    return frozenset(tag(k) for k in keywords)


ROOT_MATCHING_TAGS: frozenset[int] = frozenset(
    {k.tag for k in ROOT_MATCHING.keys}
    | {t for pair in ROOT_MATCHING.date_time_pairs for t in pair}
    | {SCHEDULED_PROCEDURE_STEP_SEQUENCE}
)
SPS_MATCHING_TAGS: frozenset[int] = frozenset(
    {k.tag for k in SPS_MATCHING.keys} | {t for pair in SPS_MATCHING.date_time_pairs for t in pair}
)

_CODE_ITEM = _tags("CodeValue", "CodingSchemeDesignator", "CodingSchemeVersion", "CodeMeaning")
_REFERENCE_ITEM = _tags("ReferencedSOPClassUID", "ReferencedSOPInstanceUID")

#: Top-level return keys (the man page's list; matching keys are return keys too).
ROOT_RETURN_TAGS: frozenset[int] = ROOT_MATCHING_TAGS | _tags(
    "RequestedProcedureDescription",
    "StudyInstanceUID",
    "ReferencedStudySequence",
    "PatientTransportArrangements",
    "CurrentPatientLocation",
    "ReferencedPatientSequence",
    "PatientWeight",
    "ConfidentialityConstraintOnPatientDataDescription",
    "PatientState",
    "PregnancyStatus",
    "MedicalAlerts",
    "Allergies",
    "SpecialNeeds",
    "NamesOfIntendedRecipientsOfResults",
    "InstitutionName",
    "AdmittingDiagnosesDescription",
    "OtherPatientIDs",
    "PatientSize",
    "EthnicGroup",
    "PatientComments",
    "AdditionalPatientHistory",
    "LastMenstrualDate",
    "InstitutionAddress",
    "OtherPatientNames",
    "PatientAddress",
    "MilitaryRank",
    "SmokingStatus",
    "RequestingService",
    "IssuerOfAdmissionID",
    "ReasonForTheRequestedProcedure",
    "RequestedProcedureLocation",
    "ConfidentialityCode",
    "ReportingPriority",
    "RequestedProcedureComments",
    "ReasonForTheImagingServiceRequest",
    "IssueDateOfImagingServiceRequest",
    "IssueTimeOfImagingServiceRequest",
    "OrderEnteredBy",
    "OrderEntererLocation",
    "OrderCallbackPhoneNumber",
    "PlacerOrderNumberImagingServiceRequest",
    "FillerOrderNumberImagingServiceRequest",
    "ImagingServiceRequestComments",
    "RequestedProcedureCodeSequence",
)

#: Return keys inside each supported sequence, keyed by the sequence's tag.
#: As in wlmscpfs, only the immediately enclosing sequence decides.
NESTED_RETURN_TAGS: dict[int, frozenset[int]] = {
    SCHEDULED_PROCEDURE_STEP_SEQUENCE: SPS_MATCHING_TAGS
    | _tags(
        "ScheduledProcedureStepDescription",
        "ScheduledStationName",
        "ScheduledProcedureStepLocation",
        "PreMedication",
        "ScheduledProcedureStepID",
        "RequestedContrastAgent",
        "CommentsOnTheScheduledProcedureStep",
        "ScheduledProcedureStepStatus",
        "ScheduledProcedureStepEndDate",
        "ScheduledProcedureStepEndTime",
        "ScheduledProtocolCodeSequence",
    ),
    REFERENCED_STUDY_SEQUENCE: _REFERENCE_ITEM,
    REFERENCED_PATIENT_SEQUENCE: _REFERENCE_ITEM,
    SCHEDULED_PROTOCOL_CODE_SEQUENCE: _CODE_ITEM,
    REQUESTED_PROCEDURE_CODE_SEQUENCE: _CODE_ITEM,
}

#: What an empty sequence in a request is expanded to (wlmscpfs's
#: ExpandEmptySequenceInSearchMask): keyword, VR, and for sequences the
#: expansion of their single item.
CODE_ITEM_EXPANSION: tuple[tuple[str, str], ...] = (
    ("CodeValue", "SH"),
    ("CodingSchemeVersion", "SH"),
    ("CodingSchemeDesignator", "SH"),
    ("CodeMeaning", "LO"),
)
SEQUENCE_EXPANSIONS: dict[int, tuple[tuple[str, str], ...]] = {
    SCHEDULED_PROCEDURE_STEP_SEQUENCE: (
        ("ScheduledStationAETitle", "AE"),
        ("ScheduledProcedureStepStartDate", "DA"),
        ("ScheduledProcedureStepStartTime", "TM"),
        ("Modality", "CS"),
        ("ScheduledPerformingPhysicianName", "PN"),
        ("ScheduledProcedureStepDescription", "LO"),
        ("ScheduledStationName", "SH"),
        ("ScheduledProcedureStepLocation", "SH"),
        ("PreMedication", "LO"),
        ("ScheduledProcedureStepID", "SH"),
        ("RequestedContrastAgent", "LO"),
        ("CommentsOnTheScheduledProcedureStep", "LT"),
        ("ScheduledProcedureStepStatus", "CS"),
        ("ScheduledProcedureStepEndDate", "DA"),
        ("ScheduledProcedureStepEndTime", "TM"),
        ("ScheduledProtocolCodeSequence", "SQ"),
    ),
    SCHEDULED_PROTOCOL_CODE_SEQUENCE: CODE_ITEM_EXPANSION,
    REQUESTED_PROCEDURE_CODE_SEQUENCE: CODE_ITEM_EXPANSION,
    REFERENCED_STUDY_SEQUENCE: (
        ("ReferencedSOPClassUID", "UI"),
        ("ReferencedSOPInstanceUID", "UI"),
    ),
    REFERENCED_PATIENT_SEQUENCE: (
        ("ReferencedSOPClassUID", "UI"),
        ("ReferencedSOPInstanceUID", "UI"),
    ),
}

#: VRs whose values depend on the Specific Character Set (DCMTK's DcmCharString).
CHARSET_AFFECTED_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})


def is_supported(tag_: int, parent: int | None) -> bool:
    """True if ``tag_`` is a matching or return key at this level.

    ``parent`` is the tag of the enclosing sequence, or None at the top level.
    """
    if parent is None:
        return tag_ in ROOT_RETURN_TAGS
    return tag_ in NESTED_RETURN_TAGS.get(parent, frozenset())


def is_matching_key(tag_: int, parent: int | None) -> bool:
    """True if ``tag_`` is a matching key at this level (its value is checked)."""
    if parent is None:
        return tag_ in ROOT_MATCHING_TAGS
    return parent == SCHEDULED_PROCEDURE_STEP_SEQUENCE and tag_ in SPS_MATCHING_TAGS
