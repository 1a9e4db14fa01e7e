"""``wlmctl add`` flags to attributes: the table, --start, --set, --procedure."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import complete_entry
from wlmd.authoring.errors import BadInput
from wlmd.ctl import flags
from wlmd.ctl.main import build_parser


def applied(*argv: str, ds: Dataset | None = None) -> Dataset:
    args = build_parser().parse_args(["add", *argv])
    return flags.apply(args, ds if ds is not None else Dataset())


def test_flags_set_root_and_step_attributes() -> None:
    ds = applied(
        "--patient-id", "P1", "--patient-name", "DOE^JANE", "--modality", "CT",
        "--station-aet", "CT01", "--start", "2026-12-02 09:30", "--procedure", "CT HEAD",
        "--birth-date", "1970-01-31",
    )  # fmt: skip
    step = ds.ScheduledProcedureStepSequence[0]
    assert (ds.PatientID, ds.PatientBirthDate) == ("P1", "19700131")
    assert (step.Modality, step.ScheduledStationAETitle) == ("CT", "CT01")
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        "20261202",
        "0930",
    )
    assert ds.RequestedProcedureDescription == "CT HEAD"
    assert step.ScheduledProcedureStepDescription == "CT HEAD"


@pytest.mark.parametrize(
    ("start", "date", "time"),
    [
        ("20261202 0930", "20261202", "0930"),
        ("2026-12-02T09:30:15", "20261202", "093015"),
        ("2026-12-02 9:05", "20261202", "0905"),
    ],
)
def test_start_forms(start: str, date: str, time: str) -> None:
    step = applied("--start", start).ScheduledProcedureStepSequence[0]
    assert (step.ScheduledProcedureStepStartDate, step.ScheduledProcedureStepStartTime) == (
        date,
        time,
    )


@pytest.mark.parametrize("start", ["2026-13-02 09:30", "tomorrowish", "2026-12-02 25:00"])
def test_bad_start(start: str) -> None:
    with pytest.raises(BadInput):
        applied("--start", start)


def test_flags_override_a_file_and_set_removes() -> None:
    ds = applied(
        "--station-aet", "CT02", "--set", "ScheduledStationName=ROOM9", "--set", "AdmissionID=",
        ds=complete_entry(),
    )  # fmt: skip
    step = ds.ScheduledProcedureStepSequence[0]
    assert step.ScheduledStationAETitle == "CT02" and step.ScheduledStationName == "ROOM9"
    assert "AdmissionID" not in ds
    assert step.ScheduledProcedureStepDescription == "CT HEAD WITHOUT CONTRAST"  # kept


@pytest.mark.parametrize(
    "assignment", ["NoSuchKeyword=1", "PatientName", "ScheduledProtocolCodeSequence=x"]
)
def test_bad_set(assignment: str) -> None:
    with pytest.raises(BadInput):
        applied("--set", assignment)
