"""build_response: wlmscpfs's response building (wldsfs.cc StartFindRequest)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, complete_entry, set_value
from tests.unit.conftest import mask_of
from wlmd.settings.config import ReturnCharset
from wlmd.worklist import keys
from wlmd.worklist.respond import ResponseElement, ResponseSequence, build_response

T = keys.tag
NONE = ReturnCharset.NONE


def _find(nodes: list[Any], keyword: str) -> Any:
    found = [n for n in nodes if n.tag == T(keyword)]
    return found[0] if found else None


def _values(nodes: list[Any]) -> dict[int, bytes]:
    return {n.tag: n.value for n in nodes if isinstance(n, ResponseElement)}


def _item(**kw: Any) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        set_value(ds, k, v)
    return ds


def test_only_mask_attributes_returned(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry()
    nodes = build_response(entry, mask_of(PatientName=None, PatientID=None), NONE)
    assert _values(nodes) == {T("PatientName"): b"DOE^JOHN", T("PatientID"): b"PID0001"}
    assert [n.vr for n in nodes] == ["PN", "LO"]


def test_request_values_are_replaced_by_the_entry_values(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry()
    nodes = build_response(entry, mask_of(PatientName="DOE*", AccessionNumber="ACC*"), NONE)
    assert _values(nodes) == {T("PatientName"): b"DOE^JOHN", T("AccessionNumber"): b"ACC0001"}


@pytest.mark.parametrize(
    "keyword", ["PatientWeight", "MedicalAlerts", "StudyDate", "InstitutionName"]
)
def test_missing_attribute_is_returned_empty(make_entry, keyword: str) -> None:  # type: ignore[no-untyped-def]
    nodes = build_response(make_entry(), mask_of(**{keyword: None}), NONE)
    assert len(nodes) == 1
    assert nodes[0].tag == T(keyword)
    assert nodes[0].value == b""


def test_raw_bytes_returned_unchanged(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(SpecificCharacterSet="ISO_IR 100", PatientName="MÜLLER^ÄNNE")
    nodes = build_response(entry, mask_of(PatientName=None), NONE)
    assert _values(nodes)[T("PatientName")] == "MÜLLER^ÄNNE".encode("latin-1")


@pytest.mark.parametrize(("status", "expected"), [(DROP, 4), ("", 4), (1, 1), (2, 2), (3, 3)])
def test_pregnancy_status(make_entry, status: Any, expected: int) -> None:  # type: ignore[no-untyped-def]
    nodes = build_response(make_entry(PregnancyStatus=status), mask_of(PregnancyStatus=None), NONE)
    assert nodes[0].vr == "US"
    assert nodes[0].value == struct.pack("<H", expected)


def test_one_response_item_per_file_item(make_entry) -> None:  # type: ignore[no-untyped-def]
    sps = [
        complete_entry(Modality="CT").ScheduledProcedureStepSequence[0],
        complete_entry(Modality="MR", ScheduledStationAETitle="ST2").ScheduledProcedureStepSequence[
            0
        ],
    ]
    entry = make_entry(ScheduledProcedureStepSequence=sps)
    nodes = build_response(
        entry, mask_of(sps={"Modality": "", "ScheduledStationAETitle": ""}), NONE
    )
    seq = _find(nodes, "ScheduledProcedureStepSequence")
    assert isinstance(seq, ResponseSequence)
    assert [_values(item) for item in seq.items] == [
        {T("Modality"): b"CT", T("ScheduledStationAETitle"): b"STATION1"},
        {T("Modality"): b"MR", T("ScheduledStationAETitle"): b"ST2"},
    ]


def test_expanded_sps_filled_and_cleaned(make_entry) -> None:  # type: ignore[no-untyped-def]
    nodes = build_response(make_entry(), mask_of(ScheduledProcedureStepSequence=[]), NONE)
    seq = _find(nodes, "ScheduledProcedureStepSequence")
    assert len(seq.items) == 1
    item = seq.items[0]
    values = _values(item)
    assert values[T("Modality")] == b"CT"
    assert values[T("ScheduledProcedureStepStartDate")] == b"20240115"
    assert values[T("PreMedication")] == b""  # absent in the file: empty
    assert values[T("ScheduledProcedureStepDescription")] == b"CT HEAD WITHOUT CONTRAST"
    # no protocol codes in the file: the echoed empty code item is removed with its sequence
    assert _find(item, "ScheduledProtocolCodeSequence") is None


def test_code_sequence_filled_one_item_per_code(make_entry) -> None:  # type: ignore[no-untyped-def]
    codes = [_item(CodeValue="C1", CodingSchemeDesignator="L", CodeMeaning="one"),
             _item(CodeValue="C2", CodingSchemeDesignator="L")]  # fmt: skip
    entry = make_entry(ScheduledProtocolCodeSequence=codes)
    item = _find(build_response(entry, mask_of(ScheduledProcedureStepSequence=[]), NONE),
                 "ScheduledProcedureStepSequence").items[0]  # fmt: skip
    seq = _find(item, "ScheduledProtocolCodeSequence")
    assert [_values(code) for code in seq.items] == [
        {T("CodeValue"): b"C1", T("CodingSchemeVersion"): b"", T("CodingSchemeDesignator"): b"L", T("CodeMeaning"): b"one"},  # noqa: E501
        {T("CodeValue"): b"C2", T("CodingSchemeVersion"): b"", T("CodingSchemeDesignator"): b"L", T("CodeMeaning"): b""},  # noqa: E501
    ]  # fmt: skip
    assert _values(item)[T("ScheduledProcedureStepDescription")] == b"CT HEAD WITHOUT CONTRAST"


@pytest.mark.parametrize(
    ("overrides", "has_codes", "has_description"),
    [
        ({}, False, True),  # no codes: empty code sequence removed, description kept
        ({"RequestedProcedureCodeSequence": [_item(CodeValue="X", CodingSchemeDesignator="L")]}, True, True),  # noqa: E501
        ({"RequestedProcedureCodeSequence": [_item(CodeValue="X", CodingSchemeDesignator="L")],
          "RequestedProcedureDescription": ""}, True, False),  # empty description removed
        ({"RequestedProcedureCodeSequence": [_item(CodeValue="X", CodingSchemeDesignator="L")],
          "RequestedProcedureDescription": DROP}, True, False),
        ({"RequestedProcedureCodeSequence": [], "RequestedProcedureDescription": ""}, False, True),  # only one of them is removed  # noqa: E501
        ({"RequestedProcedureCodeSequence": [_item(CodeValue="", CodingSchemeDesignator="")]}, False, True),  # noqa: E501
        ({"RequestedProcedureCodeSequence": [_item(CodeValue="", CodingSchemeDesignator=""),
                                             _item(CodeValue="", CodingSchemeDesignator="")]}, True, True),  # noqa: E501
    ],
)  # fmt: skip
def test_requested_procedure_description_and_codes(
    make_entry,  # type: ignore[no-untyped-def]
    overrides: dict[str, Any],
    has_codes: bool,
    has_description: bool,
) -> None:
    mask = mask_of(RequestedProcedureDescription=None, RequestedProcedureCodeSequence=[])
    nodes = build_response(make_entry(**overrides), mask, NONE)
    assert (_find(nodes, "RequestedProcedureCodeSequence") is not None) is has_codes
    assert (_find(nodes, "RequestedProcedureDescription") is not None) is has_description


@pytest.mark.parametrize(
    ("refs", "expected"),
    [
        ([], []),
        (DROP, []),
        ([_item(ReferencedSOPClassUID="1.2.3", ReferencedSOPInstanceUID="1.2.3.4")],
         [{T("ReferencedSOPClassUID"): b"1.2.3", T("ReferencedSOPInstanceUID"): b"1.2.3.4"}]),
        ([_item(ReferencedSOPClassUID="1.2", ReferencedSOPInstanceUID="1.3"),
          _item(ReferencedSOPClassUID="1.4", ReferencedSOPInstanceUID="1.5")],
         [{T("ReferencedSOPClassUID"): b"1.2", T("ReferencedSOPInstanceUID"): b"1.3"},
          {T("ReferencedSOPClassUID"): b"1.4", T("ReferencedSOPInstanceUID"): b"1.5"}]),
    ],
)  # fmt: skip
def test_reference_sequences(make_entry, refs: Any, expected: list[dict[int, bytes]]) -> None:  # type: ignore[no-untyped-def]
    for keyword in ("ReferencedStudySequence", "ReferencedPatientSequence"):
        nodes = build_response(make_entry(**{keyword: refs}), mask_of(**{keyword: []}), NONE)
        seq = _find(nodes, keyword)
        assert isinstance(seq, ResponseSequence)
        assert [_values(item) for item in seq.items] == expected


def test_sequence_echoed_when_the_file_has_no_items(make_entry) -> None:  # type: ignore[no-untyped-def]
    mask = mask_of(ReferencedPatientSequence=[_item(ReferencedSOPClassUID="1.2.840.1")])
    nodes = build_response(make_entry(), mask, NONE)
    seq = _find(nodes, "ReferencedPatientSequence")
    assert [_values(item) for item in seq.items] == [{T("ReferencedSOPClassUID"): b"1.2.840.1"}]


@pytest.mark.parametrize(("items", "count"), [([], 0), ([Dataset()], 2)])
def test_no_sequence_expansion(make_entry, items: list[Dataset], count: int) -> None:  # type: ignore[no-untyped-def]
    sps = [complete_entry().ScheduledProcedureStepSequence[0]] * 2
    mask = mask_of(sq_expansion=False, ScheduledProcedureStepSequence=items)
    seq = _find(build_response(make_entry(ScheduledProcedureStepSequence=sps), mask, NONE),
                "ScheduledProcedureStepSequence")  # fmt: skip
    assert len(seq.items) == count
    assert all(item == [] for item in seq.items)


# --- Specific Character Set (-cs0 / -cs1 / -csk) -----------------------------------------


@pytest.mark.parametrize(
    ("file_charset", "request_keys", "option", "expected"),
    [
        ("ISO_IR 100", {"PatientName": None}, ReturnCharset.NONE, None),
        ("ISO_IR 100", {"PatientName": None}, ReturnCharset.ISO_IR_100, b"ISO_IR 100"),
        ("ISO_IR 192", {"PatientName": None}, ReturnCharset.ISO_IR_100, b"ISO_IR 100"),
        ("ISO_IR 192", {"PatientName": None}, ReturnCharset.KEEP, b"ISO_IR 192"),
        (DROP, {"PatientName": None}, ReturnCharset.KEEP, None),
        (DROP, {"PatientName": None}, ReturnCharset.ISO_IR_100, b"ISO_IR 100"),
        ("ISO_IR 100", {"PatientID": None}, ReturnCharset.ISO_IR_100, b"ISO_IR 100"),  # LO
        ("ISO_IR 100", {"AccessionNumber": None}, ReturnCharset.KEEP, b"ISO_IR 100"),  # SH
        ("ISO_IR 100", {"PatientComments": None}, ReturnCharset.KEEP, b"ISO_IR 100"),  # LT
        ("ISO_IR 100", {"InstitutionAddress": None}, ReturnCharset.KEEP, b"ISO_IR 100"),  # ST
        # no PN/LO/SH/LT/ST/UT/UC attribute: no charset
        ("ISO_IR 100", {"PatientBirthDate": None, "PatientSex": None, "StudyInstanceUID": None},
         ReturnCharset.ISO_IR_100, None),
        ("ISO_IR 100", {"PatientWeight": None, "PregnancyStatus": None}, ReturnCharset.KEEP, None),
        ("ISO_IR 100", {"ReferencedStudySequence": []}, ReturnCharset.ISO_IR_100, None),
        # affected VR only inside a sequence
        ("ISO_IR 100", {"sps": {"Modality": "", "ScheduledPerformingPhysicianName": ""}},
         ReturnCharset.ISO_IR_100, b"ISO_IR 100"),
        ("ISO_IR 100", {"sps": {"Modality": ""}}, ReturnCharset.ISO_IR_100, None),
        ("ISO_IR 100", {"sq_expansion": False, "ScheduledProcedureStepSequence": []},
         ReturnCharset.ISO_IR_100, None),
    ],
)  # fmt: skip
def test_specific_character_set(
    make_entry,  # type: ignore[no-untyped-def]
    file_charset: Any,
    request_keys: dict[str, Any],
    option: ReturnCharset,
    expected: bytes | None,
) -> None:
    nodes = build_response(
        make_entry(SpecificCharacterSet=file_charset), mask_of(**request_keys), option
    )
    charset = [n for n in nodes if n.tag == keys.SPECIFIC_CHARACTER_SET]
    if expected is None:
        assert charset == []
    else:
        assert nodes[0].tag == keys.SPECIFIC_CHARACTER_SET
        assert (nodes[0].vr, nodes[0].value) == ("CS", expected)
        assert len(charset) == 1


def test_request_charset_is_never_echoed(make_entry) -> None:  # type: ignore[no-untyped-def]
    mask = mask_of(SpecificCharacterSet="ISO_IR 192", PatientName=None)
    nodes = build_response(make_entry(), mask, ReturnCharset.NONE)
    assert [n.tag for n in nodes] == [T("PatientName")]
