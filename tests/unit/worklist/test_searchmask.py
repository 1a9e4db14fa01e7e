"""check_search_mask: wlmscpfs's CheckSearchMask (dcmwlm wlds.cc) on plain data sets."""

from __future__ import annotations

import struct
from io import BytesIO
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode

from tests.helpers.worklists import query, set_value
from tests.unit.conftest import mask_of, wire
from wlmd.worklist import keys
from wlmd.worklist.searchmask import MaskElement, MaskSequence, check_search_mask, find

T = keys.tag

SPS_EXPANSION = {
    T("ScheduledStationAETitle"): "AE",
    T("ScheduledProcedureStepStartDate"): "DA",
    T("ScheduledProcedureStepStartTime"): "TM",
    T("Modality"): "CS",
    T("ScheduledPerformingPhysicianName"): "PN",
    T("ScheduledProcedureStepDescription"): "LO",
    T("ScheduledStationName"): "SH",
    T("ScheduledProcedureStepLocation"): "SH",
    T("PreMedication"): "LO",
    T("ScheduledProcedureStepID"): "SH",
    T("RequestedContrastAgent"): "LO",
    T("CommentsOnTheScheduledProcedureStep"): "LT",
    T("ScheduledProcedureStepStatus"): "CS",
    T("ScheduledProcedureStepEndDate"): "DA",
    T("ScheduledProcedureStepEndTime"): "TM",
    T("ScheduledProtocolCodeSequence"): "SQ",
}
CODE_EXPANSION = {
    T("CodeValue"): "SH",
    T("CodingSchemeVersion"): "SH",
    T("CodingSchemeDesignator"): "SH",
    T("CodeMeaning"): "LO",
}
REF_EXPANSION = {T("ReferencedSOPClassUID"): "UI", T("ReferencedSOPInstanceUID"): "UI"}


def _shape(nodes: list[Any]) -> dict[int, str]:
    return {n.tag: (n.vr if isinstance(n, MaskElement) else "SQ") for n in nodes}


def _item(**kw: Any) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        set_value(ds, k, v)
    return ds


# --- unsupported keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_keys", "unsupported", "kept"),
    [
        (
            {"PatientName": None, "StudyDescription": None, "OperatorsName": None},
            ["StudyDescription", "OperatorsName"],  # tag order, as DCMTK walks the data set
            ["PatientName"],
        ),
        ({"PatientAge": None, "PatientID": None}, ["PatientAge"], ["PatientID"]),
        ({"InstitutionalDepartmentName": None}, ["InstitutionalDepartmentName"], []),
        ({"RequestAttributesSequence": []}, ["RequestAttributesSequence"], []),
        ({"PatientName": None, "PatientID": None}, [], ["PatientName", "PatientID"]),
        ({"SpecificCharacterSet": "ISO_IR 100", "PatientName": None}, [], ["PatientName"]),
    ],
)
def test_unsupported_top_level_keys(
    request_keys: dict[str, Any], unsupported: list[str], kept: list[str]
) -> None:
    mask = mask_of(**request_keys)
    assert mask.unsupported == [T(k) for k in unsupported]
    assert mask.has_unsupported_keys is bool(unsupported)
    assert {n.tag for n in mask.nodes} == {T(k) for k in kept}
    assert mask.is_valid


def test_specific_character_set_removed_but_remembered() -> None:
    mask = mask_of(SpecificCharacterSet="ISO_IR 100", PatientName=None)
    assert find(mask.nodes, keys.SPECIFIC_CHARACTER_SET) is None
    assert mask.unsupported == []
    assert mask.request_charset == "ISO_IR 100"


@pytest.mark.parametrize(
    ("sequence", "item", "unsupported"),
    [
        ("ScheduledProcedureStepSequence", {"Modality": "CT", "PatientName": ""}, ["PatientName"]),
        (
            "ScheduledProcedureStepSequence",
            {"Modality": "", "PerformedStationAETitle": ""},
            ["PerformedStationAETitle"],
        ),
        ("ReferencedStudySequence", {"ReferencedSOPClassUID": "", "CodeValue": ""}, ["CodeValue"]),
        (
            "RequestedProcedureCodeSequence",
            {"CodeValue": "", "ReferencedSOPClassUID": ""},
            ["ReferencedSOPClassUID"],
        ),
    ],
)
def test_unsupported_nested_keys(
    sequence: str, item: dict[str, Any], unsupported: list[str]
) -> None:
    ds = Dataset()
    set_value(ds, sequence, [_item(**item)])
    mask = check_search_mask(wire(ds))
    assert mask.unsupported == [T(k) for k in unsupported]
    seq = find(mask.nodes, T(sequence))
    assert isinstance(seq, MaskSequence)
    assert len(seq.items) == 1
    assert {n.tag for n in seq.items[0]} == {T(k) for k in item} - {T(k) for k in unsupported}


def test_nested_sequence_keys_are_judged_by_their_own_sequence() -> None:
    # ScheduledProtocolCodeSequence is supported only inside the SPS item
    mask = mask_of(ScheduledProtocolCodeSequence=[])
    assert mask.unsupported == [T("ScheduledProtocolCodeSequence")]
    assert mask.nodes == []


def test_group_length_is_dropped_silently() -> None:
    ds = query(PatientName="")
    ds.add_new(0x00100000, "UL", 8)
    mask = check_search_mask(wire(ds))
    assert mask.unsupported == []
    assert [n.tag for n in mask.nodes] == [T("PatientName")]


# --- sequence expansion (PS3.4 C.2.2.2.6) -------------------------------------------------


@pytest.mark.parametrize("items", [[], [Dataset()]], ids=["no item", "empty item"])
def test_empty_sps_expanded(items: list[Dataset]) -> None:
    mask = mask_of(ScheduledProcedureStepSequence=items)
    sps = find(mask.nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    assert isinstance(sps, MaskSequence)
    assert len(sps.items) == 1
    assert _shape(sps.items[0]) == SPS_EXPANSION
    assert [n.tag for n in sps.items[0]] == sorted(SPS_EXPANSION)
    assert all(n.text == "" and n.raw == b"" for n in sps.items[0] if isinstance(n, MaskElement))
    codes = find(sps.items[0], keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE)
    assert isinstance(codes, MaskSequence)
    assert len(codes.items) == 1
    assert _shape(codes.items[0]) == CODE_EXPANSION
    assert mask.is_valid
    assert mask.unsupported == []


@pytest.mark.parametrize(
    ("sequence", "expansion"),
    [
        ("RequestedProcedureCodeSequence", CODE_EXPANSION),
        ("ReferencedStudySequence", REF_EXPANSION),
        ("ReferencedPatientSequence", REF_EXPANSION),
    ],
)
@pytest.mark.parametrize("items", [[], [Dataset()]], ids=["no item", "empty item"])
def test_other_empty_sequences_expanded(
    sequence: str, expansion: dict[int, str], items: list[Dataset]
) -> None:
    seq = find(mask_of(**{sequence: items}).nodes, T(sequence))
    assert isinstance(seq, MaskSequence)
    assert len(seq.items) == 1
    assert _shape(seq.items[0]) == expansion


def test_empty_protocol_code_sequence_inside_sps_expanded() -> None:
    ds = Dataset()
    set_value(
        ds, "ScheduledProcedureStepSequence", [_item(Modality="", ScheduledProtocolCodeSequence=[])]
    )
    sps = find(check_search_mask(wire(ds)).nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    assert isinstance(sps, MaskSequence)
    assert _shape(sps.items[0]) == {T("Modality"): "CS", T("ScheduledProtocolCodeSequence"): "SQ"}
    codes = find(sps.items[0], keys.SCHEDULED_PROTOCOL_CODE_SEQUENCE)
    assert isinstance(codes, MaskSequence)
    assert _shape(codes.items[0]) == CODE_EXPANSION


@pytest.mark.parametrize(
    ("items", "expected_items"),
    [([], []), ([Dataset()], [[]])],
    ids=["no item", "empty item"],
)
def test_no_sequence_expansion(items: list[Dataset], expected_items: list[list[Any]]) -> None:
    mask = mask_of(sq_expansion=False, ScheduledProcedureStepSequence=items)
    sps = find(mask.nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    assert isinstance(sps, MaskSequence)
    assert sps.items == expected_items


def test_non_empty_sps_is_not_expanded() -> None:
    mask = mask_of(sps={"Modality": "CT"})
    sps = find(mask.nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    assert isinstance(sps, MaskSequence)
    assert _shape(sps.items[0]) == {T("Modality"): "CS"}


# --- validation ------------------------------------------------------------------------


def test_more_than_one_item() -> None:
    ds = Dataset()
    set_value(ds, "ScheduledProcedureStepSequence", [_item(Modality="CT"), _item(Modality="MR")])
    mask = check_search_mask(wire(ds))
    assert not mask.is_valid
    assert mask.offending == [keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE]
    assert mask.error_comment == "More than 1 item in sequence."
    assert mask.invalid_count == 1
    sps = find(mask.nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    assert isinstance(sps, MaskSequence)
    assert len(sps.items) == 1  # only the first item is kept
    modality = find(sps.items[0], keys.MODALITY)
    assert isinstance(modality, MaskElement)
    assert modality.text == "CT"


@pytest.mark.parametrize(
    ("request_keys", "offending", "comment"),
    [
        ({"PatientSex": "m"}, ["PatientSex"], "Invalid Character Repertoire for datatype CS"),
        ({"StudyDate": "2024"}, ["StudyDate"], "Invalid value for an attribute with VR=DA"),
        ({"StudyTime": "2500"}, ["StudyTime"], "Invalid value for an attribute with VR=TM"),
        ({"PatientBirthDate": "19701301"}, ["PatientBirthDate"], "Invalid value for an attribute with VR=DA"),  # noqa: E501
        ({"PatientName": "Müller"}, ["PatientName"], "Invalid Character Repertoire for datatype PN"),  # noqa: E501
        ({"PatientID": "P~1"}, ["PatientID"], "Invalid Character Repertoire for datatype LO"),
        ({"AccessionNumber": "A~1"}, ["AccessionNumber"], "Invalid Character Repertoire for datatype SH"),  # noqa: E501
        ({"ResponsiblePersonRole": "Mother"}, ["ResponsiblePersonRole"], "Invalid Character Repertoire for datatype CS"),  # noqa: E501
        ({"sps": {"Modality": "ct"}}, ["Modality"], "Invalid Character Repertoire for datatype CS"),
        ({"sps": {"ScheduledProcedureStepStartDate": "2024"}}, ["ScheduledProcedureStepStartDate"], "Invalid value for an attribute with VR=DA"),  # noqa: E501
        ({"sps": {"ScheduledStationAETitle": "ST\tX"}}, ["ScheduledStationAETitle"], "Invalid Character Repertoire for datatype AE"),  # noqa: E501
    ],
)  # fmt: skip
def test_one_invalid_matching_key(
    request_keys: dict[str, Any], offending: list[str], comment: str
) -> None:
    mask = mask_of(**request_keys)
    assert not mask.is_valid
    assert mask.invalid_count == 1
    assert mask.offending == [T(k) for k in offending]
    assert mask.error_comment == comment


@pytest.mark.parametrize(
    "request_keys",
    [
        {"PatientSex": "m", "StudyDate": "2024"},
        {"PatientName": "Müller", "sps": {"Modality": "ct"}},
    ],
)
def test_two_problems_give_the_generic_comment(request_keys: dict[str, Any]) -> None:
    mask = mask_of(**request_keys)
    assert mask.invalid_count == 2
    assert len(mask.offending) == 2
    assert mask.error_comment == "Syntax error in 1 or more matching keys"


def test_more_than_one_item_and_an_invalid_key_in_it() -> None:
    ds = Dataset()
    set_value(ds, "ScheduledProcedureStepSequence", [_item(Modality="ct"), _item()])
    mask = check_search_mask(wire(ds))
    assert mask.invalid_count == 2
    assert mask.offending == [keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE, keys.MODALITY]
    assert mask.error_comment == "Syntax error in 1 or more matching keys"


@pytest.mark.parametrize(
    "request_keys",
    [
        {"PatientName": "Müller", "SpecificCharacterSet": "ISO_IR 100"},
        {"PatientID": "Ärzte~1", "SpecificCharacterSet": "ISO_IR 100"},
        {"PatientName": "DOE*", "PatientID": "P?D*", "PatientSex": "M"},
        {"StudyDate": "20240101-", "StudyTime": "-1200"},
        {"RequestedProcedureDescription": "Ünicode ~ free text"},  # return key: not checked
        {"InstitutionName": "ä~"},
        {"PatientSex": "", "StudyDate": "", "PatientName": ""},
    ],
)
def test_valid_masks(request_keys: dict[str, Any]) -> None:
    mask = mask_of(**request_keys)
    assert mask.is_valid
    assert mask.offending == []
    assert mask.error_comment == ""


def test_non_empty_return_key_is_kept_with_its_value() -> None:
    mask = mask_of(RequestedProcedureDescription="CT HEAD")
    node = find(mask.nodes, keys.REQUESTED_PROCEDURE_DESCRIPTION)
    assert isinstance(node, MaskElement)
    assert node.raw.rstrip(b" ") == b"CT HEAD"
    assert node.text.rstrip() == "CT HEAD"
    assert node.vr == "LO"


@pytest.mark.parametrize("implicit", [True, False])
def test_values_and_vrs_from_the_wire(implicit: bool) -> None:
    ds = query(PatientName="DOE^JOHN", PatientID="P1", StudyDate="20240101-", PregnancyStatus=None)
    mask = check_search_mask(wire(ds, implicit))
    got = {n.tag: (n.vr, n.text.rstrip()) for n in mask.nodes if isinstance(n, MaskElement)}
    assert got[T("PatientName")] == ("PN", "DOE^JOHN")
    assert got[T("PatientID")][0] == "LO"
    assert got[T("PatientID")][1] == "P1"
    assert got[T("StudyDate")] == ("DA", "20240101-")
    assert got[T("PregnancyStatus")][0] == "US"


def test_latin1_request_is_decoded_with_its_charset() -> None:
    ds = query(SpecificCharacterSet="ISO_IR 100", PatientName="Müller")
    mask = check_search_mask(wire(ds))
    node = find(mask.nodes, keys.PATIENT_NAME)
    assert isinstance(node, MaskElement)
    assert node.text == "Müller"
    assert node.raw == b"M\xfcller"


def test_already_converted_identifier_gives_the_same_mask() -> None:
    ds = wire(query(SpecificCharacterSet="ISO_IR 100", PatientName="Müller"))
    _ = list(ds)  # what the worker does before run_find
    node = find(check_search_mask(ds).nodes, keys.PATIENT_NAME)
    assert isinstance(node, MaskElement)
    assert (node.text, node.raw) == ("Müller", b"M\xfcller")


def test_charset_with_empty_first_value_counts_as_none() -> None:
    ds = Dataset()
    set_value(ds, "SpecificCharacterSet", ["", "ISO 2022 IR 87"])
    ds.add_new(keys.PATIENT_NAME, "PN", b"\x1b$B%d%^%@\x1b(B^\x1b$B%?%m%&\x1b(B")
    mask = check_search_mask(wire(ds))
    assert mask.offending == [keys.PATIENT_NAME]


def _explicit_un(tag: int, value: bytes = b"") -> bytes:
    """An explicit VR little endian element sent with VR UN (4-byte length form)."""
    return (
        struct.pack("<HH", tag >> 16, tag & 0xFFFF)
        + b"UN\0\0"
        + struct.pack("<I", len(value))
        + value
    )


def test_empty_return_keys_get_the_vr_pydicom_would_give_them() -> None:
    """Empty keys are read without converting them, with the same VRs as converted.

    pydicom replaces an explicit 'UN' by the dictionary VR for an empty
    value (replace_un_with_known_vr) but a non-empty raw value keeps 'UN'.
    """
    data = (
        _explicit_un(keys.PATIENT_NAME)
        + _explicit_un(keys.PATIENT_ID, b"AB")
        + _explicit_un(T("PatientWeight"))
        + _explicit_un(keys.PREGNANCY_STATUS)
    )
    mask = check_search_mask(decode(BytesIO(data), False, True))
    got = {n.tag: (n.vr, n.text, n.raw) for n in mask.nodes if isinstance(n, MaskElement)}
    assert got == {
        keys.PATIENT_NAME: ("PN", "", b""),
        keys.PATIENT_ID: ("UN", "AB", b"AB"),
        T("PatientWeight"): ("DS", "", b""),
        keys.PREGNANCY_STATUS: ("US", "", b""),
    }


@pytest.mark.parametrize("implicit", [True, False])
def test_empty_keys_read_raw_give_the_mask_of_converted_ones(implicit: bool) -> None:
    ds = query(PatientName=None, PatientID="P1", StudyDate=None, PregnancyStatus=None, sps={})
    raw = check_search_mask(wire(ds, implicit))
    converted = wire(ds, implicit)
    _ = list(converted)  # every element converted by pydicom
    assert raw == check_search_mask(converted)
