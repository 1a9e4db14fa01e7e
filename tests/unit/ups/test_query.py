"""UPS C-FIND matching (PS3.4 C.2.2.2 on the UPS keys) and response building."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.ups import scheduled
from wlmd.ups import attributes, query, table


def code(value: str, scheme: str = "99WLMD", meaning: str = "m") -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def step(uid: str, **overrides: Any) -> Dataset:
    check = attributes.check_create(scheduled(), uid, "20300101000000")
    assert check.dataset is not None
    ds = check.dataset
    for keyword, value in overrides.items():
        setattr(ds, keyword, value)
    return ds


def performer(code_value: str, name: str = "Smith^Ann") -> Dataset:
    item = Dataset()
    item.HumanPerformerCodeSequence = [code(code_value)]
    item.HumanPerformerName = name
    return item


STEPS = [
    step("1.1", ScheduledProcedureStepStartDateTime="20300514093000", PatientName="Doe^John"),
    step(
        "1.2",
        ScheduledProcedureStepStartDateTime="20300514150000",
        PatientName="Roe^Jane",
        PatientID="P2",
        ScheduledStationNameCodeSequence=[code("CT01")],
        ScheduledHumanPerformersSequence=[performer("ANN")],
    ),
    step(
        "1.3",
        ScheduledProcedureStepStartDateTime="20300515080000",
        ProcedureStepState="IN PROGRESS",
        WorklistLabel="MR",
        ScheduledStationNameCodeSequence=[code("MR01"), code("MR02")],
    ),
    step(
        "1.4",
        ScheduledProcedureStepStartDateTime="2030051612",
        ScheduledProcedureStepPriority="HIGH",
    ),
]


def request(**keys: Any) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


CASES = [
    ({}, ["1.1", "1.2", "1.3", "1.4"]),
    ({"ProcedureStepState": "SCHEDULED"}, ["1.1", "1.2", "1.4"]),
    ({"ProcedureStepState": "IN PROGRESS"}, ["1.3"]),
    ({"PatientName": "Doe*"}, ["1.1", "1.3", "1.4"]),
    ({"PatientName": "?oe^Jane"}, ["1.2"]),
    ({"PatientID": "P2"}, ["1.2"]),
    ({"SOPInstanceUID": "1.2\\1.4"}, ["1.2", "1.4"]),
    ({"ScheduledProcedureStepStartDateTime": "20300514"}, []),  # single DT: an exact instant
    ({"ScheduledProcedureStepStartDateTime": "20300514-20300514235959"}, ["1.1", "1.2"]),
    ({"ScheduledProcedureStepStartDateTime": "20300515-"}, ["1.3", "1.4"]),
    ({"ScheduledProcedureStepStartDateTime": "-203005141200"}, ["1.1"]),
    ({"ScheduledProcedureStepStartDateTime": "2030051612"}, ["1.4"]),
    ({"ScheduledProcedureStepPriority": "HIGH"}, ["1.4"]),
    ({"WorklistLabel": "M*"}, ["1.3"]),
    ({"ScheduledStationNameCodeSequence": [code("MR02")]}, ["1.3"]),
    ({"ScheduledStationNameCodeSequence": [code("MR0*", "", "")]}, ["1.3"]),
    ({"ScheduledStationNameCodeSequence": [code("CT01", "OTHER", "")]}, []),
    ({"ScheduledStationNameCodeSequence": [code("", "", "")]}, ["1.1", "1.2", "1.3", "1.4"]),
    ({"ScheduledStationNameCodeSequence": []}, ["1.1", "1.2", "1.3", "1.4"]),
    ({"ScheduledHumanPerformersSequence": [performer("ANN", "")]}, ["1.2"]),
    ({"ScheduledHumanPerformersSequence": [performer("BOB", "")]}, []),
    ({"ProcedureStepState": "SCHEDULED", "PatientName": "Roe*"}, ["1.2"]),
]


@pytest.mark.parametrize(("keys", "expected"), CASES, ids=[str(k) for k, _ in CASES])
def test_matching(keys: dict[str, Any], expected: list[str]) -> None:
    q = query.parse_query(request(**keys))
    assert [s.SOPInstanceUID for s in STEPS if q.matches(s)] == expected


@pytest.mark.parametrize(("keys", "expected"), CASES, ids=[str(k) for k, _ in CASES])
def test_narrowing_never_keeps_out_a_match(keys: dict[str, Any], expected: list[str]) -> None:
    """What the store selects on its columns holds every match (the matcher decides)."""
    n = query.parse_query(request(**keys)).narrowing
    for s in STEPS:
        if s.SOPInstanceUID not in expected:
            continue
        start = query.index_datetime(s.ScheduledProcedureStepStartDateTime)
        assert n.states is None or s.ProcedureStepState in n.states
        assert n.uids is None or s.SOPInstanceUID in n.uids
        assert n.start_low is None or start >= n.start_low
        assert n.start_high is None or start <= n.start_high
        assert n.worklist_labels is None or s.WorklistLabel in n.worklist_labels
        assert n.patient_ids is None or s.PatientID in n.patient_ids


def test_narrowing_is_selective_where_it_can_be() -> None:
    n = query.parse_query(
        request(
            ProcedureStepState="SCHEDULED", ScheduledProcedureStepStartDateTime="20300514-20300515"
        )
    ).narrowing
    assert n.states == ("SCHEDULED",)
    assert (n.start_low, n.start_high) == ("20300514000000", "20300515999999")


def test_invalid_range_value_is_reported() -> None:
    q = query.parse_query(request(ScheduledProcedureStepStartDateTime="2030-05-14"))
    assert q.invalid == (table.tag("ScheduledProcedureStepStartDateTime"),)


def test_response_has_the_asked_keys_only_never_the_transaction_uid() -> None:
    ds = STEPS[1].copy()
    ds.TransactionUID = "1.2.99"
    req = request(
        PatientName="",
        ProcedureStepState="",
        TransactionUID="",
        StudyInstanceUID="",
        ScheduledStationName="",  # (0040,0010): an MWL key dcmups sends; not UPS
        ScheduledStationNameCodeSequence=[code("", "", "")],
    )
    req.ScheduledStationNameCodeSequence[0].CodeValue = ""
    del req.ScheduledStationNameCodeSequence[0].CodeMeaning
    del req.ScheduledStationNameCodeSequence[0].CodingSchemeDesignator
    q = query.parse_query(req)
    assert q.unsupported == (table.tag("ScheduledStationName"),)
    out = query.build_response(ds, q)
    assert [e.keyword for e in out] == [
        "PatientName",
        "StudyInstanceUID",
        "ScheduledStationNameCodeSequence",
        "ProcedureStepState",
    ]
    assert out.PatientName == "Roe^Jane"
    assert out.StudyInstanceUID in ("", None)
    assert [e.keyword for e in out.ScheduledStationNameCodeSequence[0]] == ["CodeValue"]
    assert out.ScheduledStationNameCodeSequence[0].CodeValue == "CT01"


def test_an_empty_sequence_key_returns_the_whole_sequence() -> None:
    q = query.parse_query(request(ScheduledHumanPerformersSequence=[]))
    out = query.build_response(STEPS[1], q)
    assert out.ScheduledHumanPerformersSequence[0].HumanPerformerName == "Smith^Ann"


def test_a_value_on_a_key_that_is_not_matched_is_unsupported() -> None:
    q = query.parse_query(request(CommentsOnTheScheduledProcedureStep="urgent"))
    assert q.unsupported == (table.tag("CommentsOnTheScheduledProcedureStep"),)
    assert all(q.matches(s) for s in STEPS)
