"""PS3.4 Table CC.2.5-3 as data: one :class:`Rule` per UPS attribute.

Per attribute: its N-CREATE requirement (SCU type), whether N-SET may change
it, its Final State code (CC.2.5.1.1), whether it is a C-FIND matching key,
its return key type, and the rules of its sequence items. ``attributes``
checks requests against it; ``query`` derives the UPS key table from it.

Requirement codes, as in the standard: ``"1"`` present with a value, ``"2"``
present (may be empty), ``"3"`` optional, ``"1C"``/``"2C"`` conditional (not
checked: the condition is the SCU's knowledge), ``"-"`` not allowed from the
SCU. Final State codes: ``"R"`` valued before COMPLETED or CANCELED, ``"P"``
before COMPLETED, ``"X"`` before CANCELED, ``"O"`` no requirement.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.datadict import dictionary_VR
from pydicom.tag import Tag


def tag(keyword: str) -> int:
    return int(Tag(keyword))


@dataclass(frozen=True)
class Rule:
    keyword: str
    create: str = "3"
    set: str = "3"
    final: str = "O"
    match: bool = False
    ret: str = "3"
    children: tuple[Rule, ...] = ()
    #: Enumerated values (CS), checked on N-CREATE and N-SET.
    enum: tuple[str, ...] = ()

    @property
    def tag(self) -> int:
        return tag(self.keyword)

    @property
    def vr(self) -> str:
        return str(dictionary_VR(self.tag))


def _code(*, final: str = "O", match: bool = True) -> tuple[Rule, ...]:
    """Code Sequence Macro (PS3.3 Table 8.8-1) items."""
    return (
        Rule("CodeValue", "1C", final=final, match=match, ret="1"),
        Rule("CodingSchemeDesignator", "1C", final=final, match=match, ret="1"),
        Rule("CodingSchemeVersion", "1C", match=match, ret="1C"),
        Rule("CodeMeaning", "1", final=final, ret="1"),
    )


def _r(
    keyword: str,
    create: str,
    set_: str,
    final: str,
    match: bool,
    ret: str,
    *,
    children: tuple[Rule, ...] = (),
    enum: tuple[str, ...] = (),
) -> Rule:
    """One row of the table: keyword, N-CREATE, N-SET, final state, matching, return key."""
    return Rule(keyword, create, set_, final, match, ret, children, enum)


_PERFORMER = (
    _r("HumanPerformerCodeSequence", "1", "3", "O", True, "1", children=_code()),
    _r("HumanPerformerName", "1", "3", "O", True, "1"),
    _r("HumanPerformerOrganization", "1", "3", "O", True, "1"),
)
_REFERENCED_SOP = (
    _r("ReferencedSOPClassUID", "1", "3", "O", True, "1"),
    _r("ReferencedSOPInstanceUID", "1", "3", "O", True, "1"),
)

#: Table CC.2.5-3, module by module (PS3.3 C.12.1, C.30.1-C.30.4).
RULES: tuple[Rule, ...] = (
    # SOP Common
    _r("SpecificCharacterSet", "1C", "1C", "O", False, "1C"),
    _r("SOPClassUID", "-", "-", "R", False, "1"),
    _r("SOPInstanceUID", "-", "-", "R", True, "1"),
    # Unified Procedure Step Scheduled Procedure Information
    _r(
        "ScheduledProcedureStepPriority",
        "1",
        "3",
        "R",
        True,
        "1",
        enum=("HIGH", "MEDIUM", "LOW"),
    ),
    _r("ScheduledProcedureStepModificationDateTime", "3", "3", "O", True, "1"),
    _r("WorklistLabel", "3", "3", "O", True, "1"),
    _r("ProcedureStepLabel", "1", "3", "R", True, "1"),
    _r("CommentsOnTheScheduledProcedureStep", "2", "3", "O", False, "2"),
    _r("ScheduledStationNameCodeSequence", "2", "3", "O", True, "2", children=_code()),
    _r("ScheduledStationClassCodeSequence", "2", "3", "O", True, "2", children=_code()),
    _r(
        "ScheduledStationGeographicLocationCodeSequence",
        "2",
        "3",
        "O",
        True,
        "2",
        children=_code(),
    ),
    _r("ScheduledHumanPerformersSequence", "2C", "3", "O", True, "2C", children=_PERFORMER),
    _r("ScheduledProcedureStepStartDateTime", "1", "3", "R", True, "1"),
    _r("ExpectedCompletionDateTime", "3", "3", "O", True, "3"),
    _r("ScheduledProcedureStepExpirationDateTime", "3", "3", "O", False, "3"),
    _r("ScheduledWorkitemCodeSequence", "2", "3", "O", True, "2", children=_code()),
    _r("ScheduledProcessingParametersSequence", "2", "3", "O", False, "2"),
    _r(
        "InputReadinessState", "1", "3", "R", True, "1", enum=("INCOMPLETE", "UNAVAILABLE", "READY")
    ),
    _r(
        "InputInformationSequence",
        "2",
        "3",
        "O",
        False,
        "2",
        children=(
            _r("StudyInstanceUID", "1", "3", "O", False, "1"),
            _r("SeriesInstanceUID", "1", "3", "O", False, "1"),
            _r("ReferencedSOPSequence", "1", "3", "O", False, "1", children=_REFERENCED_SOP),
        ),
    ),
    _r("StudyInstanceUID", "3", "3", "O", True, "2"),
    _r("OutputDestinationSequence", "3", "3", "O", False, "3"),
    # Unified Procedure Step Relationship (patient and request: fixed after N-CREATE)
    _r("PatientName", "2", "-", "O", True, "2"),
    _r("PatientID", "2", "-", "O", True, "2"),
    _r("IssuerOfPatientID", "3", "-", "O", True, "2"),
    _r("OtherPatientIDsSequence", "3", "-", "O", False, "3"),
    _r("PatientBirthDate", "2", "-", "O", True, "2"),
    _r("PatientSex", "2", "-", "O", True, "2"),
    _r("AdmissionID", "2", "-", "O", True, "2"),
    _r("IssuerOfAdmissionIDSequence", "2", "-", "O", True, "2", children=_code()),
    _r("AdmittingDiagnosesDescription", "2", "-", "O", False, "2"),
    _r("AdmittingDiagnosesCodeSequence", "2", "-", "O", False, "2", children=_code()),
    _r(
        "ReferencedRequestSequence",
        "2",
        "-",
        "O",
        True,
        "2",
        children=(
            _r("StudyInstanceUID", "1", "-", "O", True, "1"),
            _r("AccessionNumber", "2", "-", "O", True, "2"),
            _r("RequestedProcedureID", "2", "-", "O", True, "2"),
            _r("RequestedProcedureDescription", "2", "-", "O", False, "2"),
            _r("RequestedProcedureCodeSequence", "2", "-", "O", True, "2", children=_code()),
        ),
    ),
    _r("ReplacedProcedureStepSequence", "1C", "-", "O", False, "3", children=_REFERENCED_SOP),
    # Unified Procedure Step Progress Information
    _r("ProcedureStepState", "1", "-", "R", True, "1"),
    _r(
        "ProcedureStepProgressInformationSequence",
        "3",
        "3",
        "O",
        False,
        "2",
        children=(
            _r("ProcedureStepProgress", "3", "3", "O", False, "2"),
            _r("ProcedureStepProgressDescription", "3", "3", "O", False, "2"),
            _r(
                "ProcedureStepCommunicationsURISequence",
                "3",
                "3",
                "O",
                False,
                "2",
                children=(
                    _r("ContactURI", "1", "3", "O", False, "1"),
                    _r("ContactDisplayName", "3", "3", "O", False, "2"),
                ),
            ),
            _r("ProcedureStepCancellationDateTime", "3", "3", "X", False, "2"),
            _r("ReasonForCancellation", "3", "3", "O", False, "2"),
            _r(
                "ProcedureStepDiscontinuationReasonCodeSequence",
                "3",
                "3",
                "O",
                False,
                "2",
                children=_code(),
            ),
        ),
    ),
    # Unified Procedure Step Performed Procedure Information
    _r(
        "UnifiedProcedureStepPerformedProcedureSequence",
        "3",
        "3",
        "P",
        False,
        "2",
        children=(
            _r("ActualHumanPerformersSequence", "3", "3", "O", False, "2", children=_PERFORMER),
            _r("PerformedStationNameCodeSequence", "3", "3", "P", False, "2", children=_code()),
            _r("PerformedStationClassCodeSequence", "3", "3", "O", False, "2", children=_code()),
            _r(
                "PerformedStationGeographicLocationCodeSequence",
                "3",
                "3",
                "O",
                False,
                "2",
                children=_code(),
            ),
            _r("PerformedProcedureStepStartDateTime", "3", "3", "P", False, "2"),
            _r("PerformedProcedureStepEndDateTime", "3", "3", "P", False, "2"),
            _r("PerformedProcedureStepDescription", "3", "3", "O", False, "2"),
            _r("CommentsOnThePerformedProcedureStep", "3", "3", "O", False, "2"),
            _r("PerformedWorkitemCodeSequence", "3", "3", "P", False, "2", children=_code()),
            _r("PerformedProcessingParametersSequence", "3", "3", "O", False, "2"),
            _r("OutputInformationSequence", "3", "3", "O", False, "2"),
        ),
    ),
)

BY_TAG: dict[int, Rule] = {r.tag: r for r in RULES}

#: The SOP Class of a stored instance (PS3.4 CC.3.1: UPS instances are of the Push class).
UPS_SOP_CLASS = "1.2.840.10008.5.1.4.34.6.1"
TRANSACTION_UID = tag("TransactionUID")
PROCEDURE_STEP_STATE = tag("ProcedureStepState")
SOP_CLASS_UID = tag("SOPClassUID")
SOP_INSTANCE_UID = tag("SOPInstanceUID")
SPECIFIC_CHARACTER_SET = tag("SpecificCharacterSet")
MODIFICATION_DATETIME = tag("ScheduledProcedureStepModificationDateTime")
WORKLIST_LABEL = tag("WorklistLabel")
PROGRESS_SEQUENCE = tag("ProcedureStepProgressInformationSequence")
PERFORMED_SEQUENCE = tag("UnifiedProcedureStepPerformedProcedureSequence")
#: The attributes of the Scheduled Procedure Information module: changing one
#: of them updates the modification DateTime (PS3.3 C.30.2).
SCHEDULED_INFORMATION = frozenset(
    tag(k)
    for k in (
        "ScheduledProcedureStepPriority",
        "WorklistLabel",
        "ProcedureStepLabel",
        "CommentsOnTheScheduledProcedureStep",
        "ScheduledStationNameCodeSequence",
        "ScheduledStationClassCodeSequence",
        "ScheduledStationGeographicLocationCodeSequence",
        "ScheduledHumanPerformersSequence",
        "ScheduledProcedureStepStartDateTime",
        "ExpectedCompletionDateTime",
        "ScheduledProcedureStepExpirationDateTime",
        "ScheduledWorkitemCodeSequence",
        "ScheduledProcessingParametersSequence",
        "InputReadinessState",
        "InputInformationSequence",
        "StudyInstanceUID",
        "OutputDestinationSequence",
    )
)
