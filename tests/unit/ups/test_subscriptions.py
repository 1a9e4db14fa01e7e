"""Subscription requests (CC.2.3) and the events each change produces (CC.2.4)."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from tests.helpers.ups import scheduled
from wlmd.ups import attributes, subscriptions
from wlmd.ups.subscriptions import EventType, Scope

KNOWN = {"WATCHER", "PERFORMER"}.__contains__


def info(**keys: str) -> Dataset:
    ds = Dataset()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("uid", "scope"),
    [
        ("1.2.3", Scope.INSTANCE),
        (subscriptions.GLOBAL, Scope.GLOBAL),
        (subscriptions.FILTERED_GLOBAL, Scope.FILTERED),
    ],
)
def test_subscribe_scopes(uid: str, scope: Scope) -> None:
    check, sub = subscriptions.parse_subscription(
        subscriptions.SUBSCRIBE, uid, info(ReceivingAE="WATCHER", DeletionLock="TRUE"), KNOWN
    )
    assert check.status == 0 and sub is not None
    assert (sub.scope, sub.ae, sub.deletion_lock) == (scope, "WATCHER", True)
    assert sub.uid == (uid if scope is Scope.INSTANCE else None)


@pytest.mark.parametrize(
    ("keys", "status"),
    [
        ({"DeletionLock": "FALSE"}, 0x0120),
        ({"ReceivingAE": "STRANGER", "DeletionLock": "FALSE"}, 0xC308),
        ({"ReceivingAE": "WATCHER"}, 0x0120),
        ({"ReceivingAE": "WATCHER", "DeletionLock": "YES"}, 0x0106),
    ],
)
def test_subscribe_refusals(keys: dict[str, str], status: int) -> None:
    check, sub = subscriptions.parse_subscription(
        subscriptions.SUBSCRIBE, "1.2", info(**keys), KNOWN
    )
    assert (hex(check.status), sub) == (hex(status), None)


def test_deletion_lock_sent_as_cs_by_dcmups_is_read() -> None:
    ds = Dataset()
    ds.add_new("ReceivingAE", "AE", "WATCHER")
    ds.add_new("DeletionLock", "CS", "false")  # dcmups: CS, any case
    _, sub = subscriptions.parse_subscription(subscriptions.SUBSCRIBE, "1.2", ds, KNOWN)
    assert sub is not None and sub.deletion_lock is False


def test_a_lock_on_a_global_subscription_may_be_refused_with_b301() -> None:
    check, sub = subscriptions.parse_subscription(
        subscriptions.SUBSCRIBE,
        subscriptions.GLOBAL,
        info(ReceivingAE="WATCHER", DeletionLock="TRUE"),
        KNOWN,
        lock_global=False,
    )
    assert check.status == 0xB301
    assert sub is not None and sub.deletion_lock is False


def test_filtered_global_keeps_the_matching_keys() -> None:
    _, sub = subscriptions.parse_subscription(
        subscriptions.SUBSCRIBE,
        subscriptions.FILTERED_GLOBAL,
        info(ReceivingAE="WATCHER", DeletionLock="FALSE", WorklistLabel="CT"),
        KNOWN,
    )
    assert sub is not None and sub.filter is not None
    assert [e.keyword for e in sub.filter] == ["WorklistLabel"]
    step = attributes.check_create(scheduled(), "1.2", "20300101000000").dataset
    assert step is not None
    assert subscriptions.applies(sub.filter, step)
    step.WorklistLabel = "MR"
    assert not subscriptions.applies(sub.filter, step)
    assert subscriptions.applies(None, step)


def test_suspend_applies_to_the_global_instances_only() -> None:
    check, _ = subscriptions.parse_subscription(
        subscriptions.SUSPEND_GLOBAL, "1.2.3", info(ReceivingAE="WATCHER"), KNOWN
    )
    assert check.status == 0xC314
    check, sub = subscriptions.parse_subscription(
        subscriptions.SUSPEND_GLOBAL, subscriptions.GLOBAL, info(ReceivingAE="WATCHER"), KNOWN
    )
    assert check.status == 0 and sub is not None and sub.scope is Scope.GLOBAL


def _stored() -> Dataset:
    ds = attributes.check_create(scheduled(), "1.2", "20300101000000").dataset
    assert ds is not None
    return ds


def test_create_reports_state_and_assignment() -> None:
    ds = _stored()
    assert [e.type for e in subscriptions.on_create("1.2", ds, ("W",))] == [EventType.STATE_REPORT]
    station = Dataset()
    station.CodeValue = "CT01"
    ds.ScheduledStationNameCodeSequence = [station]
    events = subscriptions.on_create("1.2", ds, ("W", "X"))
    assert [e.type for e in events] == [EventType.STATE_REPORT, EventType.ASSIGNED]
    assert events[0].subscribers == ("W", "X")
    assert events[0].info.ProcedureStepState == "SCHEDULED"
    assert subscriptions.on_create("1.2", ds, ()) == []


def test_set_reports_progress_readiness_and_assignment() -> None:
    ds = _stored()
    changed = frozenset(
        {
            attributes.tag("InputReadinessState"),
            attributes.tag("ProcedureStepProgressInformationSequence"),
        }
    )
    ds.ProcedureStepProgressInformationSequence = [Dataset()]
    events = subscriptions.on_set("1.2", ds, changed, ("W",))
    assert [e.type for e in events] == [EventType.STATE_REPORT, EventType.PROGRESS_REPORT]
    assert (
        subscriptions.on_set("1.2", ds, frozenset({attributes.tag("ProcedureStepLabel")}), ("W",))
        == []
    )


def test_canceling_a_scheduled_step_reports_in_progress_then_canceled() -> None:
    ds = _stored()
    attributes.supplement_cancel(ds, "20300101000000")
    ds.ProcedureStepState = "CANCELED"
    events = subscriptions.on_state_change("1.2", ds, ("W",), via_in_progress=True)
    assert [e.info.ProcedureStepState for e in events] == ["IN PROGRESS", "CANCELED"]
    assert events[1].info.ProcedureStepDiscontinuationReasonCodeSequence[0].CodeValue == "110513"


def test_cancel_requested_names_the_requester() -> None:
    request = info(ReasonForCancellation="wrong patient")
    (event,) = subscriptions.on_cancel_requested("1.2", request, "RIS", ("PERFORMER",))
    assert event.type is EventType.CANCEL_REQUESTED
    assert (event.info.RequestingAE, event.info.ReasonForCancellation) == ("RIS", "wrong patient")


def test_scp_status_change() -> None:
    (event,) = subscriptions.scp_status_change(True, ("A", "B"))
    assert event.info.SCPStatus == "GOING DOWN" and event.uid == subscriptions.GLOBAL
