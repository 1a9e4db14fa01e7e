"""wlmd.mpps.rules: the MPPS state machine and attribute checks, table by table (PS3.4 F.7.2)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from tests.helpers.mpps import completed, in_progress
from wlmd.mpps import rules


def without(ds: Dataset, keyword: str) -> Dataset:
    delattr(ds, keyword)
    return ds


def emptied(ds: Dataset, keyword: str) -> Dataset:
    setattr(ds, keyword, "")
    return ds


@pytest.mark.parametrize(
    ("ds", "status", "offending"),
    [
        (in_progress(), rules.SUCCESS, ()),
        (without(in_progress(), "PerformedStationAETitle"), 0x0120, (rules.STATION_AE,)),
        (without(in_progress(), "ScheduledStepAttributesSequence"), 0x0120,
         (rules.SCHEDULED_STEPS,)),
        (emptied(in_progress(), "Modality"), 0x0121, (rules.tag("Modality"),)),
        (emptied(in_progress(), "PerformedProcedureStepStartDate"), 0x0121,
         (rules.tag("PerformedProcedureStepStartDate"),)),
        (emptied(in_progress(), "PerformedProcedureStepStatus"), 0x0121, (rules.STATUS,)),
    ],
)  # fmt: skip
def test_n_create_needs_the_type_1_attributes(
    ds: Dataset, status: int, offending: tuple[int, ...]
) -> None:
    check = rules.check_create(ds)
    assert (check.status, check.offending) == (status, offending)


@pytest.mark.parametrize("status", ["COMPLETED", "DISCONTINUED", "SCHEDULED", "INPROGRESS"])
def test_n_create_only_in_progress(status: str) -> None:
    ds = in_progress()
    ds.PerformedProcedureStepStatus = status
    check = rules.check_create(ds)
    assert (check.status, check.offending) == (0x0106, (rules.STATUS,))


def test_n_create_needs_a_study_in_each_scheduled_step() -> None:
    ds = in_progress()
    ds.ScheduledStepAttributesSequence[0].StudyInstanceUID = ""
    assert rules.check_create(ds).status == 0x0121
    del ds.ScheduledStepAttributesSequence[0].StudyInstanceUID
    assert rules.check_create(ds).status == 0x0120
    ds.ScheduledStepAttributesSequence = []
    assert rules.check_create(ds).status == 0x0121


# --- N-SET: every (stored status, new status) pair ------------------------------------------


@pytest.mark.parametrize(
    ("stored", "wanted", "status", "error_id"),
    [
        ("IN PROGRESS", "IN PROGRESS", 0x0000, None),
        ("IN PROGRESS", "COMPLETED", 0x0000, None),
        ("IN PROGRESS", "DISCONTINUED", 0x0000, None),
        ("IN PROGRESS", "CANCELED", 0x0106, None),
        ("COMPLETED", "IN PROGRESS", 0x0110, 0xA710),
        ("COMPLETED", "COMPLETED", 0x0110, 0xA710),
        ("COMPLETED", "DISCONTINUED", 0x0110, 0xA710),
        ("DISCONTINUED", "COMPLETED", 0x0110, 0xA710),
        ("DISCONTINUED", "DISCONTINUED", 0x0110, 0xA710),
    ],
)
def test_n_set_state_machine(stored: str, wanted: str, status: int, error_id: int | None) -> None:
    step = in_progress()
    step.PerformedProcedureStepStatus = stored
    check = rules.check_set(step, completed(wanted))
    assert (check.status, check.error_id) == (status, error_id)


def test_n_set_without_a_status_keeps_it_in_progress() -> None:
    change = Dataset()
    change.PerformedProcedureStepDescription = "with contrast"
    check = rules.check_set(in_progress(), change)
    assert check.status == 0 and check.dataset is not None
    assert check.dataset.PerformedProcedureStepStatus == "IN PROGRESS"
    assert check.dataset.PerformedProcedureStepDescription == "with contrast"


@pytest.mark.parametrize(
    "missing", ["PerformedProcedureStepEndDate", "PerformedProcedureStepEndTime"]
)
def test_a_final_state_needs_end_date_and_time(missing: str) -> None:
    stored = without(in_progress(), missing)
    change = completed(end=False)
    assert rules.check_set(stored, change).status == 0x0120
    empty = rules.check_set(in_progress(), change)  # stored empty, not given
    assert (empty.status, set(empty.offending)) == (0x0121, {rules.END_DATE, rules.END_TIME})


def test_not_settable_attributes_are_ignored_not_applied() -> None:
    change = completed()
    change.PatientName = "Other^Name"
    change.PerformedStationAETitle = "CT99"
    check = rules.check_set(in_progress(), change)
    assert check.status == 0 and check.dataset is not None
    assert set(check.ignored) == {rules.tag("PatientName"), rules.STATION_AE}
    assert (
        check.dataset.PatientName == "Doe^Jane" and check.dataset.PerformedStationAETitle == "CT01"
    )
    assert check.dataset.PerformedProcedureStepStatus == "COMPLETED"


def test_the_link_is_the_first_scheduled_step() -> None:
    assert rules.link(in_progress("1.2.3", "SPS9")) == rules.Link("1.2.3", "SPS9", "ACC1")
    assert rules.link(Dataset()) == rules.Link("", "", "")
