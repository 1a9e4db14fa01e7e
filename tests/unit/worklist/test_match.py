"""entry_matches: dcmwlm DatasetMatchesSearchMask (wlfsim.cc) over parsed entries."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, complete_entry
from tests.unit.conftest import mask_of
from wlmd.worklist.match import MatchOptions, entry_matches

DEFAULT = MatchOptions()
NOCASE = MatchOptions(case_insensitive_names=True)
ALLWILD = MatchOptions(wildcards_all_keys=True)


def _sps(**kw: Any) -> Dataset:
    """One SPS item of the default entry with ``kw`` applied."""
    item = complete_entry(**kw).ScheduledProcedureStepSequence[0]
    return item


# (entry overrides, request keys, options, expected)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], MatchOptions, bool]] = [
    # --- PatientName (PN, wildcards)
    ("name exact", {}, {"PatientName": "DOE^JOHN"}, DEFAULT, True),
    ("name other", {}, {"PatientName": "DOE^JANE"}, DEFAULT, False),
    ("name prefix", {}, {"PatientName": "DOE*"}, DEFAULT, True),
    ("name ?", {}, {"PatientName": "D?E^JOHN"}, DEFAULT, True),
    ("name case", {}, {"PatientName": "doe*"}, DEFAULT, False),
    ("name nocase", {}, {"PatientName": "doe*"}, NOCASE, True),
    ("name nocase exact", {}, {"PatientName": "doe^john"}, NOCASE, True),
    ("name universal *", {}, {"PatientName": "*"}, DEFAULT, True),
    ("name universal empty", {}, {"PatientName": None}, DEFAULT, True),
    ("name leading space", {}, {"PatientName": " DOE^JOHN"}, DEFAULT, False),
    ("name multi-valued query", {}, {"PatientName": "NOBODY\\DOE^JOHN"}, DEFAULT, True),
    ("name multi-valued query no", {}, {"PatientName": "NOBODY\\DOE^JANE"}, DEFAULT, False),
    ("name multi-valued candidate", {"PatientName": "SMITH^J\\DOE^JOHN"}, {"PatientName": "DOE*"}, DEFAULT, True),  # noqa: E501
    # --- other person names
    ("referring", {}, {"ReferringPhysicianName": "REFERRER*"}, DEFAULT, True),
    ("referring nocase", {}, {"ReferringPhysicianName": "referrer^rita"}, NOCASE, True),
    ("referring case", {}, {"ReferringPhysicianName": "referrer^rita"}, DEFAULT, False),
    ("requesting", {}, {"RequestingPhysician": "REQ*^RON"}, DEFAULT, True),
    ("requesting no", {}, {"RequestingPhysician": "REQ*^RAN"}, DEFAULT, False),
    ("responsible", {"ResponsiblePerson": "MOM^ANNA"}, {"ResponsiblePerson": "MOM*"}, DEFAULT, True),  # noqa: E501
    ("responsible no", {"ResponsiblePerson": "MOM^ANNA"}, {"ResponsiblePerson": "DAD*"}, DEFAULT, False),  # noqa: E501
    ("responsible absent", {}, {"ResponsiblePerson": "MOM*"}, DEFAULT, False),
    ("role", {"ResponsiblePersonRole": "MOTHER"}, {"ResponsiblePersonRole": "MOTH?R"}, DEFAULT, True),  # noqa: E501
    ("role no", {"ResponsiblePersonRole": "MOTHER"}, {"ResponsiblePersonRole": "FATHER"}, DEFAULT, False),  # noqa: E501
    # --- PatientID (LO, wildcards literal)
    ("pid exact", {}, {"PatientID": "PID0001"}, DEFAULT, True),
    ("pid other", {}, {"PatientID": "PID0002"}, DEFAULT, False),
    ("pid * literal", {}, {"PatientID": "PID*"}, DEFAULT, False),
    ("pid ? literal", {}, {"PatientID": "PID000?"}, DEFAULT, False),
    ("pid * wildcards_all_keys", {}, {"PatientID": "PID*"}, ALLWILD, True),
    ("pid ? wildcards_all_keys", {}, {"PatientID": "PID000?"}, ALLWILD, True),
    ("pid * matches literal *", {"PatientID": "PID*"}, {"PatientID": "PID*"}, DEFAULT, True),
    ("pid lone * universal", {}, {"PatientID": "*"}, DEFAULT, True),
    ("pid lone ** universal", {}, {"PatientID": "**"}, DEFAULT, True),
    ("pid nocase is PN only", {}, {"PatientID": "pid0001"}, NOCASE, False),
    ("pid spaces insignificant", {}, {"PatientID": " PID0001 "}, DEFAULT, True),
    ("pid multi-valued query", {}, {"PatientID": "X\\PID0001"}, DEFAULT, True),
    ("pid multi-valued candidate", {"PatientID": "A1\\PID0001"}, {"PatientID": "PID0001"}, DEFAULT, True),  # noqa: E501
    # --- other root keys (wildcards)
    ("accession", {}, {"AccessionNumber": "ACC*"}, DEFAULT, True),
    ("accession no", {}, {"AccessionNumber": "ACC0002"}, DEFAULT, False),
    ("accession nocase is PN only", {}, {"AccessionNumber": "acc0001"}, NOCASE, False),
    ("rp id", {}, {"RequestedProcedureID": "RP*1"}, DEFAULT, True),
    ("rp id no", {}, {"RequestedProcedureID": "RP*2"}, DEFAULT, False),
    ("sex", {}, {"PatientSex": "M"}, DEFAULT, True),
    ("sex ?", {}, {"PatientSex": "?"}, DEFAULT, True),
    ("sex no", {}, {"PatientSex": "F"}, DEFAULT, False),
    ("admission", {}, {"AdmissionID": "ADM000?"}, DEFAULT, True),
    ("admission absent", {"AdmissionID": DROP}, {"AdmissionID": "ADM*"}, DEFAULT, False),
    ("admission empty", {"AdmissionID": ""}, {"AdmissionID": "ADM*"}, DEFAULT, False),
    ("admission empty, universal query", {"AdmissionID": ""}, {"AdmissionID": "*"}, DEFAULT, True),
    ("admission absent, universal query", {"AdmissionID": DROP}, {"AdmissionID": None}, DEFAULT, True),  # noqa: E501
    ("priority", {}, {"RequestedProcedurePriority": "ROUT*"}, DEFAULT, True),
    ("priority no", {}, {"RequestedProcedurePriority": "STAT"}, DEFAULT, False),
    ("issuer", {}, {"IssuerOfPatientID": "HO?P"}, DEFAULT, True),
    ("issuer no", {}, {"IssuerOfPatientID": "HOSPITAL"}, DEFAULT, False),
    ("issuer multi-valued candidate", {"IssuerOfPatientID": "A\\B"}, {"IssuerOfPatientID": "B"}, DEFAULT, True),  # noqa: E501
    ("birth date", {}, {"PatientBirthDate": "19700101"}, DEFAULT, True),
    ("birth date range", {}, {"PatientBirthDate": "19600101-19800101"}, DEFAULT, True),
    ("birth date open range", {}, {"PatientBirthDate": "19700102-"}, DEFAULT, False),
    ("birth date no", {}, {"PatientBirthDate": "19700102"}, DEFAULT, False),
    # --- keys that are return keys only never restrict
    ("return key value ignored", {}, {"RequestedProcedureDescription": "MR KNEE"}, DEFAULT, True),
    ("return key uid ignored", {}, {"StudyInstanceUID": "1.2.3"}, DEFAULT, True),
    # --- StudyDate / StudyTime (combined)
    ("study date absent", {}, {"StudyDate": "20240115"}, DEFAULT, False),
    ("study date", {"StudyDate": "20240115"}, {"StudyDate": "20240115"}, DEFAULT, True),
    ("study date range", {"StudyDate": "20240115"}, {"StudyDate": "20240101-20240131"}, DEFAULT, True),  # noqa: E501
    ("study date no", {"StudyDate": "20240115"}, {"StudyDate": "20240116-"}, DEFAULT, False),
    ("study date multi-valued candidate", {"StudyDate": "20240101\\20240115"}, {"StudyDate": "20240115"}, DEFAULT, True),  # noqa: E501
    ("study time only", {"StudyTime": "1000"}, {"StudyTime": "0900-1100"}, DEFAULT, True),
    ("study time only no", {"StudyTime": "1000"}, {"StudyTime": "1100-"}, DEFAULT, False),
    ("study time absent", {}, {"StudyTime": "0900-1100"}, DEFAULT, False),
    ("study time empty", {"StudyTime": ""}, {"StudyTime": "0900-1100"}, DEFAULT, False),
    (
        "study date+time combined",
        {"StudyDate": "20240102", "StudyTime": "2000"},
        {"StudyDate": "20240101-20240103", "StudyTime": "0800-1700"},
        DEFAULT,
        True,
    ),
    (
        "study date+time single",
        {"StudyDate": "20240102", "StudyTime": "2000"},
        {"StudyDate": "20240102", "StudyTime": "2000"},
        DEFAULT,
        True,
    ),
    (
        "study date+time single no",
        {"StudyDate": "20240102", "StudyTime": "2000"},
        {"StudyDate": "20240102", "StudyTime": "2001"},
        DEFAULT,
        False,
    ),
    (
        "study date+time, time absent in entry",
        {"StudyDate": "20240102"},
        {"StudyDate": "20240102", "StudyTime": "0000-2359"},
        DEFAULT,
        False,
    ),
    (
        "study date+time, date absent in entry",
        {"StudyTime": "1000"},
        {"StudyDate": "20240102", "StudyTime": "0000-2359"},
        DEFAULT,
        False,
    ),
    # --- Scheduled Procedure Step keys
    ("modality", {}, {"sps": {"Modality": "CT"}}, DEFAULT, True),
    ("modality no", {}, {"sps": {"Modality": "MR"}}, DEFAULT, False),
    ("modality * literal", {}, {"sps": {"Modality": "C*"}}, DEFAULT, False),
    ("modality ? literal", {}, {"sps": {"Modality": "C?"}}, DEFAULT, False),
    ("modality wildcards_all_keys", {}, {"sps": {"Modality": "C*"}}, ALLWILD, True),
    ("modality lone *", {}, {"sps": {"Modality": "*"}}, DEFAULT, True),
    ("station", {}, {"sps": {"ScheduledStationAETitle": "STATION1"}}, DEFAULT, True),
    ("station no", {}, {"sps": {"ScheduledStationAETitle": "STATION2"}}, DEFAULT, False),
    ("station * literal", {}, {"sps": {"ScheduledStationAETitle": "STATION*"}}, DEFAULT, False),
    ("station wildcards_all_keys", {}, {"sps": {"ScheduledStationAETitle": "STAT*"}}, ALLWILD, True),  # noqa: E501
    ("station lone *", {}, {"sps": {"ScheduledStationAETitle": "*"}}, DEFAULT, True),
    ("performing", {}, {"sps": {"ScheduledPerformingPhysicianName": "PERF*"}}, DEFAULT, True),
    ("performing no", {}, {"sps": {"ScheduledPerformingPhysicianName": "X*"}}, DEFAULT, False),
    ("performing nocase", {}, {"sps": {"ScheduledPerformingPhysicianName": "perf*"}}, NOCASE, True),
    ("sps date", {}, {"sps": {"ScheduledProcedureStepStartDate": "20240115"}}, DEFAULT, True),
    ("sps date range", {}, {"sps": {"ScheduledProcedureStepStartDate": "20240101-20240131"}}, DEFAULT, True),  # noqa: E501
    ("sps date no", {}, {"sps": {"ScheduledProcedureStepStartDate": "20240201-"}}, DEFAULT, False),
    ("sps time", {}, {"sps": {"ScheduledProcedureStepStartTime": "0900-1000"}}, DEFAULT, True),
    ("sps time no", {}, {"sps": {"ScheduledProcedureStepStartTime": "1000-1100"}}, DEFAULT, False),
    (
        "sps date+time",
        {},
        {"sps": {"ScheduledProcedureStepStartDate": "20240115", "ScheduledProcedureStepStartTime": "0900-1000"}},  # noqa: E501
        DEFAULT,
        True,
    ),
    (
        "sps date+time no",
        {},
        {"sps": {"ScheduledProcedureStepStartDate": "20240115", "ScheduledProcedureStepStartTime": "1000-1100"}},  # noqa: E501
        DEFAULT,
        False,
    ),
    (
        "sps date+time combined across midnight",
        {"ScheduledProcedureStepStartDate": "20240114", "ScheduledProcedureStepStartTime": "2330"},
        {"sps": {"ScheduledProcedureStepStartDate": "20240114-20240115", "ScheduledProcedureStepStartTime": "2200-0600"}},  # noqa: E501
        DEFAULT,
        True,
    ),
    ("sps keys in one item", {}, {"sps": {"Modality": "CT", "ScheduledStationAETitle": "STATION1"}}, DEFAULT, True),  # noqa: E501
    ("sps keys, one fails", {}, {"sps": {"Modality": "CT", "ScheduledStationAETitle": "STATION2"}}, DEFAULT, False),  # noqa: E501
    ("sps return key ignored", {}, {"sps": {"ScheduledProcedureStepDescription": "nothing like it"}}, DEFAULT, True),  # noqa: E501
    # --- SPS in the entry missing
    ("no sps, empty sps query", {"ScheduledProcedureStepSequence": DROP}, {"ScheduledProcedureStepSequence": []}, DEFAULT, True),  # noqa: E501
    ("no sps, universal sps keys", {"ScheduledProcedureStepSequence": DROP}, {"sps": {"Modality": "", "ScheduledPerformingPhysicianName": "*"}}, DEFAULT, True),  # noqa: E501
    ("no sps, modality", {"ScheduledProcedureStepSequence": DROP}, {"sps": {"Modality": "CT"}}, DEFAULT, False),  # noqa: E501
    ("no sps, lone * on modality", {"ScheduledProcedureStepSequence": DROP}, {"sps": {"Modality": "*"}}, DEFAULT, False),  # noqa: E501
    ("no sps, lone * on station", {"ScheduledProcedureStepSequence": DROP}, {"sps": {"ScheduledStationAETitle": "*"}}, DEFAULT, False),  # noqa: E501
    ("empty sps, modality", {"ScheduledProcedureStepSequence": []}, {"sps": {"Modality": "CT"}}, DEFAULT, False),  # noqa: E501
    ("no sps, root keys still match", {"ScheduledProcedureStepSequence": DROP}, {"PatientID": "PID0001"}, DEFAULT, True),  # noqa: E501
]  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "request_keys", "options", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_entry_matches(
    make_entry,  # type: ignore[no-untyped-def]
    overrides: dict[str, Any],
    request_keys: dict[str, Any],
    options: MatchOptions,
    expected: bool,
) -> None:
    entry = make_entry(**overrides)
    assert entry_matches(entry, mask_of(**request_keys), options) is expected


TWO_SPS = [
    _sps(Modality="CT", ScheduledStationAETitle="STATION1"),
    _sps(
        Modality="MR",
        ScheduledStationAETitle="STATION2",
        ScheduledProcedureStepStartDate="20240120",
    ),
]


@pytest.mark.parametrize(
    ("sps", "expected"),
    [
        ({"Modality": "MR"}, True),
        ({"Modality": "CT"}, True),
        ({"Modality": "MR", "ScheduledStationAETitle": "STATION2"}, True),
        ({"Modality": "MR", "ScheduledStationAETitle": "STATION1"}, False),  # not in one item
        ({"Modality": "MR", "ScheduledProcedureStepStartDate": "20240115"}, False),
        ({"Modality": "CT", "ScheduledProcedureStepStartDate": "20240115"}, True),
        ({"Modality": "US"}, False),
    ],
)
def test_several_sps_items(make_entry, sps: dict[str, Any], expected: bool) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(ScheduledProcedureStepSequence=TWO_SPS)
    assert entry_matches(entry, mask_of(sps=sps), DEFAULT) is expected


def test_latin1_file_matches_utf8_request(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(SpecificCharacterSet="ISO_IR 100", PatientName="MÜLLER^ÄNNE")
    mask = mask_of(SpecificCharacterSet="ISO_IR 192", PatientName="MÜLLER*")
    assert entry_matches(entry, mask, DEFAULT)


def test_star_is_not_universal_for_dates(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(StudyDate="20240115")
    assert entry_matches(entry, mask_of(StudyDate="*"), DEFAULT) is False


def test_empty_candidate_time_is_midnight_in_combined_matching(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(StudyDate="20240115", StudyTime="")
    mask = mask_of(StudyDate="20240115", StudyTime="0000-0100")
    assert entry_matches(entry, mask, DEFAULT) is True
