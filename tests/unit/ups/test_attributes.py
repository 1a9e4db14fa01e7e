"""N-CREATE, N-SET and final-state checks against Table CC.2.5-3 (wlmd/ups/attributes.py)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from tests.helpers.ups import performed, scheduled
from wlmd.ups import attributes, states, table
from wlmd.ups.states import State

NOW = "20300101120000"
UID = "1.2.3.4"


def tag(keyword: str) -> int:
    return table.tag(keyword)


def test_complete_request_is_stored_as_given_plus_the_scps_attributes() -> None:
    check = attributes.check_create(scheduled(), UID, NOW)
    assert check.status == states.SUCCESS, check.reason
    ds = check.dataset
    assert ds is not None
    assert ds.SOPInstanceUID == UID
    assert ds.SOPClassUID == table.UPS_SOP_CLASS
    assert ds.ScheduledProcedureStepModificationDateTime == NOW
    assert ds.PatientName == "Doe^John"


@pytest.mark.parametrize(
    "keyword",
    [
        "ScheduledProcedureStepPriority",
        "ProcedureStepLabel",
        "ScheduledProcedureStepStartDateTime",
        "InputReadinessState",
        "ProcedureStepState",
    ],
)
def test_missing_type_1_attribute_is_0120_and_empty_is_0121(keyword: str) -> None:
    ds = scheduled()
    del ds[keyword]
    check = attributes.check_create(ds, UID, NOW)
    assert (check.status, check.offending) == (states.MISSING_ATTRIBUTE, (tag(keyword),))
    ds = scheduled()
    ds[keyword].value = ""
    check = attributes.check_create(ds, UID, NOW)
    expected = states.CREATE_NOT_SCHEDULED if keyword == "ProcedureStepState" else 0x0121
    assert (check.status, check.offending) == (expected, (tag(keyword),))


@pytest.mark.parametrize("state", ["IN PROGRESS", "COMPLETED", "CANCELED", "BOGUS"])
def test_create_in_another_state_is_c309(state: str) -> None:
    check = attributes.check_create(scheduled(ProcedureStepState=state), UID, NOW)
    assert check.status == states.CREATE_NOT_SCHEDULED == 0xC309
    assert check.dataset is None


def test_transaction_uid_or_another_instance_uid_is_not_allowed_in_create() -> None:
    check = attributes.check_create(scheduled(TransactionUID="1.2.9"), UID, NOW)
    assert (check.status, check.offending) == (0x0106, (table.TRANSACTION_UID,))
    # Type 2, "shall be empty" (Table CC.2.5-3): a conforming SCU sends it empty
    empty = attributes.check_create(scheduled(TransactionUID=""), UID, NOW)
    assert not empty.failed and empty.dataset is not None
    assert table.TRANSACTION_UID not in empty.dataset
    check = attributes.check_create(scheduled(SOPInstanceUID="9.9"), UID, NOW)
    assert (check.status, check.offending) == (0x0105, (table.SOP_INSTANCE_UID,))
    assert attributes.check_create(scheduled(SOPInstanceUID=UID), UID, NOW).status == 0


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("ScheduledProcedureStepPriority", "URGENT"), ("InputReadinessState", "MAYBE")],
)
def test_value_outside_the_enumeration_is_0106(keyword: str, value: str) -> None:
    check = attributes.check_create(scheduled(**{keyword: value}), UID, NOW)
    assert (check.status, check.offending) == (0x0106, (tag(keyword),))


def test_missing_type_2_attributes_are_added_empty_with_b300() -> None:
    ds = scheduled()
    del ds.PatientBirthDate
    del ds.ScheduledWorkitemCodeSequence
    check = attributes.check_create(ds, UID, NOW)
    assert check.status == states.CREATED_WITH_MODIFICATIONS == 0xB300
    assert check.dataset is not None
    assert check.dataset.PatientBirthDate in ("", None)
    assert list(check.dataset.ScheduledWorkitemCodeSequence) == []


def test_the_scp_owns_the_modification_datetime_and_a_default_worklist_label() -> None:
    ds = scheduled(ScheduledProcedureStepModificationDateTime="19990101")
    del ds.WorklistLabel
    check = attributes.check_create(ds, UID, NOW, default_worklist_label="RAD")
    assert check.status == 0xB300
    assert check.dataset is not None
    assert check.dataset.ScheduledProcedureStepModificationDateTime == NOW
    assert check.dataset.WorklistLabel == "RAD"


def _stored() -> Dataset:
    check = attributes.check_create(scheduled(), UID, "20290101000000")
    assert check.dataset is not None
    return check.dataset


@pytest.mark.parametrize(
    "keyword", ["PatientName", "PatientID", "ProcedureStepState", "SOPInstanceUID"]
)
def test_set_of_an_attribute_fixed_after_create_is_0105(keyword: str) -> None:
    mod = Dataset()
    setattr(mod, keyword, "X")
    check = attributes.check_set(_stored(), mod, NOW)
    assert (check.status, check.offending) == (0x0105, (tag(keyword),))


def test_set_cannot_empty_a_type_1_attribute() -> None:
    mod = Dataset()
    mod.ProcedureStepLabel = ""
    check = attributes.check_set(_stored(), mod, NOW)
    assert (check.status, check.offending) == (0x0121, (tag("ProcedureStepLabel"),))


def test_set_merges_reports_changes_and_keeps_out_the_transaction_uid() -> None:
    mod = Dataset()
    mod.TransactionUID = "1.2.5"
    mod.ProcedureStepLabel = "CT head and neck"
    mod.CommentsOnTheScheduledProcedureStep = ""  # unchanged: was empty
    check = attributes.check_set(_stored(), mod, NOW)
    assert check.status == 0
    assert check.dataset is not None
    assert check.dataset.ProcedureStepLabel == "CT head and neck"
    assert table.TRANSACTION_UID not in check.dataset
    assert check.changed == {tag("ProcedureStepLabel")}
    assert check.dataset.ScheduledProcedureStepModificationDateTime == NOW


def test_set_of_progress_only_leaves_the_modification_datetime() -> None:
    mod = Dataset()
    progress = Dataset()
    progress.ProcedureStepProgress = "50"
    mod.ProcedureStepProgressInformationSequence = [progress]
    check = attributes.check_set(_stored(), mod, NOW)
    assert check.dataset is not None
    assert check.dataset.ScheduledProcedureStepModificationDateTime == "20290101000000"
    assert check.changed == {table.PROGRESS_SEQUENCE}


def test_completed_needs_the_performed_procedure_information() -> None:
    ds = _stored()
    check = attributes.check_final(ds, State.COMPLETED)
    assert check.status == states.FINAL_STATE_REQUIREMENTS_NOT_MET == 0xC304
    assert check.offending == (table.PERFORMED_SEQUENCE,)
    assert attributes.check_final(performed(ds), State.COMPLETED).status == 0


def test_completed_needs_each_p_attribute_of_the_performed_item() -> None:
    ds = performed(_stored())
    del ds.UnifiedProcedureStepPerformedProcedureSequence[0].PerformedProcedureStepEndDateTime
    check = attributes.check_final(ds, State.COMPLETED)
    assert check.offending == (tag("PerformedProcedureStepEndDateTime"),)


def test_canceled_needs_a_cancellation_datetime_which_the_scp_supplies() -> None:
    ds = _stored()
    assert attributes.check_final(ds, State.CANCELED).status == 0xC304
    info = Dataset()
    info.ReasonForCancellation = "patient left"
    attributes.supplement_cancel(ds, NOW, info)
    assert attributes.check_final(ds, State.CANCELED).status == 0
    item = ds.ProcedureStepProgressInformationSequence[0]
    assert item.ProcedureStepCancellationDateTime == NOW
    assert item.ReasonForCancellation == "patient left"
    assert item.ProcedureStepDiscontinuationReasonCodeSequence[0].CodeValue == "110513"


def test_get_never_returns_the_transaction_uid_and_answers_asked_for_keys() -> None:
    ds = _stored()
    ds.TransactionUID = "1.2.5"
    everything = attributes.select(ds, None)
    assert table.TRANSACTION_UID not in everything
    assert everything.PatientName == "Doe^John"
    some = attributes.select(
        ds, [tag("PatientName"), table.TRANSACTION_UID, tag("StudyInstanceUID")]
    )
    assert [e.tag for e in some] == [tag("PatientName"), tag("StudyInstanceUID")]
    assert some.StudyInstanceUID in ("", None)


def test_every_rule_names_a_known_attribute_with_valid_codes() -> None:
    def walk(rules: tuple[table.Rule, ...]) -> None:
        for rule in rules:
            assert rule.vr  # the keyword is in pydicom's dictionary
            assert rule.create in {"1", "2", "3", "1C", "2C", "-"}, rule
            assert rule.set in {"1C", "3", "-"}, rule
            assert rule.final in {"R", "P", "X", "O"}, rule
            assert not rule.children or rule.vr == "SQ", rule
            walk(rule.children)

    walk(table.RULES)
