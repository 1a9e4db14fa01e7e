"""load_entry and incompleteness (wlmscpfs --enable-file-reject, DatasetIsComplete)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, complete_entry, set_value, write_wl
from wlmd.worklist import keys
from wlmd.worklist.entry import WorklistFileError, incompleteness, load_entry

T = keys.tag


def _item(**kw: Any) -> Dataset:
    ds = Dataset()
    for k, v in kw.items():
        set_value(ds, k, v)
    return ds


@pytest.mark.parametrize("syntax", ["explicit", "implicit", "big", "deflated"])
def test_load_every_transfer_syntax(tmp_path: Path, syntax: str) -> None:
    path = write_wl(tmp_path / "a.wl", complete_entry(PregnancyStatus=2), syntax)
    entry = load_entry(str(path), "a.wl")
    assert entry.name == "a.wl"
    assert entry.charset == "ISO_IR 100"
    assert entry.pregnancy_status == 2
    assert entry.elements[T("PatientID")] == b"PID0001"
    assert entry.elements[T("StudyInstanceUID")] == b"1.2.826.0.1.3680043.10.1234.1"  # NUL stripped
    assert entry.root_text[T("PatientName")] == "DOE^JOHN"
    assert T("StudyInstanceUID") not in entry.root_text  # not a matching key
    assert entry.sps_text == [
        {
            T("Modality"): "CT",
            T("ScheduledStationAETitle"): "STATION1",
            T("ScheduledProcedureStepStartDate"): "20240115",
            T("ScheduledProcedureStepStartTime"): "093000",
            T("ScheduledPerformingPhysicianName"): "PERFORMER^PAT",
        }
    ]
    assert all(t >> 16 != 0x0002 for t in entry.elements)  # no file meta
    assert incompleteness(entry) is None


def test_text_is_decoded_with_the_file_charset(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(SpecificCharacterSet="ISO_IR 100", PatientName="MÜLLER")
    assert entry.root_text[T("PatientName")] == "MÜLLER"
    assert entry.elements[T("PatientName")] == "MÜLLER".encode("latin-1")


def test_no_sps(make_entry) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(ScheduledProcedureStepSequence=DROP, SpecificCharacterSet=DROP)
    assert entry.sps_text is None
    assert entry.charset == ""
    assert entry.pregnancy_status is None


def _good_bytes(tmp_path: Path) -> bytes:
    return write_wl(tmp_path / "good.dcm", complete_entry()).read_bytes()


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda good: b"", id="zero-length"),
        pytest.param(lambda good: b"hello, this is not DICOM\n" * 10, id="text"),
        pytest.param(lambda good: bytes(range(256)) * 4, id="binary"),
        pytest.param(lambda good: good[:132], id="preamble only"),
        pytest.param(lambda good: good[:200], id="truncated in file meta"),
        pytest.param(lambda good: b"\x00" * 128 + b"DICM" + b"\xff" * 64, id="corrupt meta"),
    ],
)
def test_unusable_files_raise(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.wl"
    path.write_bytes(make(_good_bytes(tmp_path)))
    with pytest.raises(WorklistFileError) as info:
        load_entry(str(path), "bad.wl")
    assert str(info.value)


@pytest.mark.parametrize("cut", [5, 20, 39])
def test_truncated_value_is_refused(tmp_path: Path, cut: int) -> None:
    # as DCMTK's loadFile: a premature end of the data set makes the file unusable,
    # even when what was read would be a complete entry
    good = write_wl(tmp_path / "g.dcm", complete_entry(ImagingServiceRequestComments="x" * 40))
    path = tmp_path / "cut.wl"
    path.write_bytes(good.read_bytes()[:-cut])
    with pytest.raises(WorklistFileError, match="truncated"):
        load_entry(str(path), "cut.wl")


def test_directory_raises(tmp_path: Path) -> None:
    (tmp_path / "dir.wl").mkdir()
    with pytest.raises(WorklistFileError):
        load_entry(str(tmp_path / "dir.wl"), "dir.wl")


def test_vanished_file_raises(tmp_path: Path) -> None:
    with pytest.raises(WorklistFileError):
        load_entry(str(tmp_path / "nothing.wl"), "nothing.wl")


def test_file_without_preamble_is_accepted(tmp_path: Path) -> None:
    from pydicom.filewriter import dcmwrite

    path = tmp_path / "raw.wl"
    ds = complete_entry()
    dcmwrite(path, ds, implicit_vr=False, little_endian=True)
    entry = load_entry(str(path), "raw.wl")
    assert entry.elements[T("PatientID")] == b"PID0001"


# --- completeness -------------------------------------------------------------------

REF_OK = _item(ReferencedSOPClassUID="1.2", ReferencedSOPInstanceUID="1.3")
CODE_OK = _item(CodeValue="C", CodingSchemeDesignator="L")


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, None),
        ({"ScheduledProcedureStepSequence": DROP}, "ScheduledProcedureStepSequence"),
        ({"ScheduledProcedureStepSequence": []}, "ScheduledProcedureStepSequence"),
        ({"ScheduledProcedureStepSequence": [complete_entry().ScheduledProcedureStepSequence[0]] * 2},  # noqa: E501
         "ScheduledProcedureStepSequence"),
        ({"ScheduledStationAETitle": DROP}, "ScheduledStationAETitle"),
        ({"ScheduledStationAETitle": ""}, "ScheduledStationAETitle"),
        ({"ScheduledProcedureStepStartDate": DROP}, "ScheduledProcedureStepStartDate"),
        ({"ScheduledProcedureStepStartTime": ""}, "ScheduledProcedureStepStartTime"),
        ({"Modality": DROP}, "Modality"),
        ({"ScheduledProcedureStepID": DROP}, "ScheduledProcedureStepID"),
        ({"ScheduledProcedureStepID": "  "}, "ScheduledProcedureStepID"),  # padding only = empty
        ({"RequestedProcedureID": DROP}, "RequestedProcedureID"),
        ({"StudyInstanceUID": ""}, "StudyInstanceUID"),
        ({"PatientName": DROP}, "PatientName"),
        ({"PatientID": ""}, "PatientID"),
        # SPS description / protocol codes
        ({"ScheduledProcedureStepDescription": DROP}, "ScheduledProcedureStepDescription"),
        ({"ScheduledProcedureStepDescription": ""}, "ScheduledProcedureStepDescription"),
        ({"ScheduledProcedureStepDescription": DROP, "ScheduledProtocolCodeSequence": [CODE_OK]}, None),  # noqa: E501
        ({"ScheduledProtocolCodeSequence": [CODE_OK]}, None),
        ({"ScheduledProtocolCodeSequence": []}, "ScheduledProtocolCodeSequence"),
        ({"ScheduledProtocolCodeSequence": [_item(CodeValue="C")]}, "ScheduledProtocolCodeSequence"),  # noqa: E501
        ({"ScheduledProtocolCodeSequence": [CODE_OK, _item(CodingSchemeDesignator="L", CodeValue="")]},  # noqa: E501
         "ScheduledProtocolCodeSequence"),
        ({"ScheduledProtocolCodeSequence": [CODE_OK], "ScheduledProcedureStepDescription": ""},
         "ScheduledProcedureStepDescription"),
        # requested procedure description / codes
        ({"RequestedProcedureDescription": DROP}, "RequestedProcedureDescription"),
        ({"RequestedProcedureDescription": ""}, "RequestedProcedureDescription"),
        ({"RequestedProcedureDescription": DROP, "RequestedProcedureCodeSequence": [CODE_OK]}, None),  # noqa: E501
        ({"RequestedProcedureCodeSequence": []}, "RequestedProcedureCodeSequence"),
        ({"RequestedProcedureCodeSequence": [_item(CodingSchemeDesignator="L")]}, "RequestedProcedureCodeSequence"),  # noqa: E501
        # referenced study / patient sequences (type 2)
        ({"ReferencedStudySequence": DROP}, None),
        ({"ReferencedPatientSequence": DROP}, None),
        ({"ReferencedStudySequence": [REF_OK]}, None),
        ({"ReferencedStudySequence": [_item(ReferencedSOPClassUID="1.2")]}, "ReferencedStudySequence"),  # noqa: E501
        ({"ReferencedPatientSequence": [REF_OK, _item(ReferencedSOPInstanceUID="1.3")]}, "ReferencedPatientSequence"),  # noqa: E501
        # not type 1: may be missing
        ({"AccessionNumber": DROP, "PatientBirthDate": DROP, "ScheduledPerformingPhysicianName": DROP}, None),  # noqa: E501
    ],
)  # fmt: skip
def test_incompleteness(make_entry, overrides: dict[str, Any], reason: str | None) -> None:  # type: ignore[no-untyped-def]
    problem = incompleteness(make_entry(**overrides))
    if reason is None:
        assert problem is None
    else:
        assert problem is not None
        assert reason in problem
