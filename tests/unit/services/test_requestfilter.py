"""The request-filter hook (wlmd.services.requestfilter): loading, outcomes, faults."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from wlmd.services import requestfilter
from wlmd.services.requestfilter import RequestFilterError, RequestInfo

INFO = RequestInfo("CT_OLD", "WLMD", "127.0.0.1:4000")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "request-filters"


def write(tmp_path: Path, body: str, name: str = "f.py") -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def query(station: str = "CT_OLD", date: str = "20261202") -> Dataset:
    step = Dataset()
    step.ScheduledStationAETitle = station
    step.ScheduledProcedureStepStartDate = date
    step.Modality = ""
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = "P1"
    ds.ScheduledProcedureStepSequence = [step]
    return ds


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("def request_filter(q, r):\n  return q\n  )", "SyntaxError"),
        ("raise RuntimeError('no db')\n", "RuntimeError: no db"),
        ("def other(q, r):\n    return q\n", "defines no function request_filter"),
        ("request_filter = 3\n", "defines no function request_filter"),
    ],
)
def test_a_filter_that_cannot_be_used_is_one_line(tmp_path: Path, body: str, reason: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(RequestFilterError, match=reason) as caught:
        requestfilter.load(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RequestFilterError, match="no such file"):
        requestfilter.load(str(tmp_path / "absent.py"))


@pytest.mark.parametrize("syntax", [ImplicitVRLittleEndian, ExplicitVRLittleEndian])
def test_the_changed_query_is_matched_as_if_received(tmp_path: Path, syntax: object) -> None:
    function = requestfilter.load(str(EXAMPLES / "drop_station_aet.py"))
    filtered = requestfilter.apply(function, query(), INFO, syntax)
    assert filtered.identifier is not None and not filtered.refused
    # re-encoded and decoded: raw elements, as the search mask gets them off the wire
    raw = filtered.identifier.get_item(0x00100020)
    assert type(raw).__name__ == "RawDataElement"
    step = filtered.identifier.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == ""
    assert step.ScheduledProcedureStepStartDate == "20261202"


def test_other_callers_pass_unchanged() -> None:
    function = requestfilter.load(str(EXAMPLES / "drop_station_aet.py"))
    info = RequestInfo("MR01", "WLMD", "127.0.0.1:4000")
    filtered = requestfilter.apply(function, query(), info, ImplicitVRLittleEndian)
    assert filtered.identifier is not None
    assert filtered.identifier.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == (
        "CT_OLD"
    )


def test_widen_date_example() -> None:
    function = requestfilter.load(str(EXAMPLES / "widen_date.py"))
    filtered = requestfilter.apply(function, query(date="20261231"), INFO, ImplicitVRLittleEndian)
    assert filtered.identifier is not None
    step = filtered.identifier.ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepStartDate == "20261231-20270101"
    ranged = requestfilter.apply(
        function, query(date="20261201-20261202"), INFO, ImplicitVRLittleEndian
    )
    assert ranged.identifier is not None
    step = ranged.identifier.ScheduledProcedureStepSequence[0]
    assert step.ScheduledProcedureStepStartDate == "20261201-20261202"


def test_force_modality_example_refuses_unknown_callers() -> None:
    function = requestfilter.load(str(EXAMPLES / "force_modality.py"))
    known = RequestInfo("US_ROOM3", "WLMD", "127.0.0.1:4000")
    filtered = requestfilter.apply(function, query(), known, ImplicitVRLittleEndian)
    assert filtered.identifier is not None
    assert filtered.identifier.ScheduledProcedureStepSequence[0].Modality == "US"
    refused = requestfilter.apply(function, query(), INFO, ImplicitVRLittleEndian)
    assert refused.refused and refused.identifier is None


def test_an_exception_answers_unfiltered_and_keeps_patient_data_out_of_the_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    body = "def request_filter(q, r):\n    raise ValueError('patient ' + str(q.PatientName))\n"
    function = requestfilter.load(write(tmp_path, body, "broken.py"))
    original = query()
    original.PatientName = "SECRET^NAME"
    with caplog.at_level(logging.DEBUG, "wlmd.worker"):
        filtered = requestfilter.apply(function, original, INFO, ImplicitVRLittleEndian)
    assert filtered.identifier is original and not filtered.refused
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "ValueError" in warnings[0].getMessage()
    assert "SECRET" not in warnings[0].getMessage()
    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    assert debug and debug[0].exc_info is not None, "the traceback at debug level"


def test_a_wrong_return_type_answers_unfiltered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    function = requestfilter.load(write(tmp_path, "def request_filter(q, r):\n    return 42\n"))
    original = query()
    with caplog.at_level(logging.WARNING, "wlmd.worker"):
        filtered = requestfilter.apply(function, original, INFO, ImplicitVRLittleEndian)
    assert filtered.identifier is original
    assert "returned int" in caplog.text
