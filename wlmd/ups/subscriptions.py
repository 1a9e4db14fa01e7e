"""UPS subscriptions (PS3.4 CC.2.3) and the events a change produces (CC.2.4).

Pure functions: :func:`parse_subscription` checks an N-ACTION 3/4/5 request;
the ``on_*`` functions return the :class:`Event` records a change produces,
which the store writes to its outbox in the same transaction as the change.

Scopes: one instance; Global (``1.2.840.10008.5.1.4.34.5``: every step,
present and future); Filtered Global (``….34.5.1``: the steps that match the
request's matching keys). As dcm4chee-arc does, a global subscription is
turned into instance subscriptions: for the existing steps when it is made,
for a new step when it is created; so events always go to the instance's
subscribers. Unsubscribing from the global instance also ends the AE's
instance subscriptions; suspending it (type 5) only stops new ones.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from wlmd.ups import states, table
from wlmd.ups.attributes import Check, has_value, text
from wlmd.ups.query import parse_query
from wlmd.ups.states import State

GLOBAL = "1.2.840.10008.5.1.4.34.5"
FILTERED_GLOBAL = "1.2.840.10008.5.1.4.34.5.1"
RECEIVING_AE = table.tag("ReceivingAE")
DELETION_LOCK = table.tag("DeletionLock")
REQUESTING_AE = table.tag("RequestingAE")

#: N-ACTION Action Type IDs (PS3.4 Table CC.2-1).
CHANGE_STATE, REQUEST_CANCEL, SUBSCRIBE, UNSUBSCRIBE, SUSPEND_GLOBAL = 1, 2, 3, 4, 5


class EventType(enum.IntEnum):
    """N-EVENT-REPORT Event Type IDs (PS3.4 Table CC.2.4-1)."""

    STATE_REPORT = 1
    CANCEL_REQUESTED = 2
    PROGRESS_REPORT = 3
    SCP_STATUS_CHANGE = 4
    ASSIGNED = 5


class Scope(enum.Enum):
    INSTANCE = "instance"
    GLOBAL = "global"
    FILTERED = "filtered global"


@dataclass(frozen=True)
class Event:
    """One event to deliver: to each of ``subscribers``, about instance ``uid``."""

    uid: str
    type: EventType
    info: Dataset
    subscribers: tuple[str, ...]


@dataclass(frozen=True)
class Subscription:
    """A checked subscribe/unsubscribe/suspend request."""

    scope: Scope
    uid: str | None  # the step, for Scope.INSTANCE
    ae: str
    deletion_lock: bool = False
    filter: Dataset | None = None  # matching keys, for Scope.FILTERED


def scope_of(uid: str) -> Scope:
    if uid == GLOBAL:
        return Scope.GLOBAL
    if uid == FILTERED_GLOBAL:
        return Scope.FILTERED
    return Scope.INSTANCE


def parse_subscription(
    action: int,
    uid: str,
    info: Dataset,
    known_ae: Callable[[str], bool],
    *,
    lock_global: bool = True,
) -> tuple[Check, Subscription | None]:
    """Check N-ACTION 3 (subscribe), 4 (unsubscribe) or 5 (suspend global).

    Receiving AE (0074,1234) is required (0x0120); to subscribe it must be one
    the SCP can reach (0xC308). Deletion Lock (0074,1230) on subscribe is "TRUE" or
    "FALSE" (dcmups sends it as CS; 0x0106 otherwise). ``lock_global=False``
    refuses locks on global subscriptions with warning B301. Suspend applies
    to the global instances only (0xC314).
    """
    ae = text(info, RECEIVING_AE)
    if not ae:
        return Check(states.MISSING_ATTRIBUTE, (RECEIVING_AE,), "no Receiving AE"), None
    if action == SUBSCRIBE and not known_ae(ae):
        # Only new subscriptions: an AE taken out of the configuration may still leave.
        return Check(states.UNKNOWN_RECEIVING_AE, (RECEIVING_AE,), f"unknown AE {ae!r}"), None
    scope = scope_of(uid)
    if action == SUSPEND_GLOBAL and scope is Scope.INSTANCE:
        return Check(states.ACTION_NOT_APPROPRIATE, (), "suspend of an instance"), None
    if action != SUBSCRIBE:
        return Check(states.SUCCESS), Subscription(scope, _instance(scope, uid), ae)
    lock_text = text(info, DELETION_LOCK).upper()
    if lock_text not in ("TRUE", "FALSE"):
        status = (
            states.MISSING_ATTRIBUTE
            if DELETION_LOCK not in info
            else states.INVALID_ATTRIBUTE_VALUE
        )
        return Check(status, (DELETION_LOCK,), f"Deletion Lock {lock_text!r}"), None
    lock = lock_text == "TRUE"
    status = states.SUCCESS
    if lock and scope is not Scope.INSTANCE and not lock_global:
        lock, status = False, states.DELETION_LOCK_NOT_GRANTED
    keys = None
    if scope is Scope.FILTERED:
        keys = Dataset()
        keys.update({e.tag: e for e in info if e.tag not in (RECEIVING_AE, DELETION_LOCK)})
    return Check(status), Subscription(scope, _instance(scope, uid), ae, lock, keys)


def _instance(scope: Scope, uid: str) -> str | None:
    return uid if scope is Scope.INSTANCE else None


def applies(subscription_filter: Dataset | None, ds: Dataset) -> bool:
    """Whether a global subscription (filtered or not) covers the step ``ds``."""
    if subscription_filter is None:
        return True
    return parse_query(subscription_filter).matches(ds)


# --- events (CC.2.4) ---------------------------------------------------------------


def state_report(ds: Dataset, state: State | None = None) -> Dataset:
    """UPS State Report event information (Table CC.2.4-2)."""
    info = Dataset()
    info.ProcedureStepState = state.value if state else text(ds, table.PROCEDURE_STEP_STATE)
    info.InputReadinessState = text(ds, table.tag("InputReadinessState"))
    if info.ProcedureStepState == State.CANCELED.value and has_value(ds, table.PROGRESS_SEQUENCE):
        item = ds.ProcedureStepProgressInformationSequence[0]
        for keyword in ("ReasonForCancellation", "ProcedureStepDiscontinuationReasonCodeSequence"):
            if keyword in item:
                setattr(info, keyword, item.data_element(keyword).value)  # type: ignore[union-attr]
    return info


def assigned(ds: Dataset, station_changed: bool, performers_changed: bool) -> list[Dataset]:
    """UPS Assigned event information: one per scheduled performer (CC.2.4.2)."""
    station = table.tag("ScheduledStationNameCodeSequence")
    performers = table.tag("ScheduledHumanPerformersSequence")
    out = []
    if performers_changed and has_value(ds, performers):
        for item in ds[performers].value:
            info = Dataset()
            for keyword in ("HumanPerformerCodeSequence", "HumanPerformerOrganization"):
                if keyword in item:
                    info[keyword] = item[keyword]
            if station_changed and has_value(ds, station):
                info[station] = ds[station]
            out.append(info)
    elif station_changed and has_value(ds, station):
        info = Dataset()
        info[station] = ds[station]
        out.append(info)
    return out


def _events(
    uid: str, pairs: Iterable[tuple[EventType, Dataset]], to: tuple[str, ...]
) -> list[Event]:
    return [Event(uid, kind, info, to) for kind, info in pairs] if to else []


def on_create(uid: str, ds: Dataset, subscribers: tuple[str, ...]) -> list[Event]:
    """A new SCHEDULED step: State Report, and Assigned when a station or performer is set."""
    pairs = [(EventType.STATE_REPORT, state_report(ds))]
    pairs += [(EventType.ASSIGNED, info) for info in assigned(ds, True, True)]
    return _events(uid, pairs, subscribers)


def on_state_change(
    uid: str, ds: Dataset, subscribers: tuple[str, ...], via_in_progress: bool = False
) -> list[Event]:
    """A new state: its State Report (IN PROGRESS first when a SCHEDULED step was canceled)."""
    pairs = []
    if via_in_progress:
        pairs.append((EventType.STATE_REPORT, state_report(ds, State.IN_PROGRESS)))
    pairs.append((EventType.STATE_REPORT, state_report(ds)))
    return _events(uid, pairs, subscribers)


def on_set(
    uid: str, ds: Dataset, changed: frozenset[int], subscribers: tuple[str, ...]
) -> list[Event]:
    """N-SET: State Report on a new Input Readiness State, Progress Report on new
    progress, Assigned on a new station or performers (CC.2.4.2)."""
    pairs = []
    if table.tag("InputReadinessState") in changed:
        pairs.append((EventType.STATE_REPORT, state_report(ds)))
    if table.PROGRESS_SEQUENCE in changed:
        progress = Dataset()
        progress[table.PROGRESS_SEQUENCE] = ds[table.PROGRESS_SEQUENCE]
        pairs.append((EventType.PROGRESS_REPORT, progress))
    station = table.tag("ScheduledStationNameCodeSequence") in changed
    performers = table.tag("ScheduledHumanPerformersSequence") in changed
    pairs += [(EventType.ASSIGNED, info) for info in assigned(ds, station, performers)]
    return _events(uid, pairs, subscribers)


def on_cancel_requested(
    uid: str, request: Dataset, requesting_ae: str, subscribers: tuple[str, ...]
) -> list[Event]:
    """UPS Cancel Requested (CC.2.4.2): who asks, why, and whom to contact."""
    info = Dataset()
    info.RequestingAE = text(request, REQUESTING_AE) or requesting_ae
    for keyword in (
        "ReasonForCancellation",
        "ProcedureStepDiscontinuationReasonCodeSequence",
        "ContactURI",
        "ContactDisplayName",
    ):
        if keyword in request:
            info[keyword] = request[keyword]
    return _events(uid, [(EventType.CANCEL_REQUESTED, info)], subscribers)


def scp_status_change(going_down: bool, subscribers: tuple[str, ...]) -> list[Event]:
    """SCP Status Change (CC.2.4.2) on an orderly stop or on start, to every subscriber.

    State survives restarts (the store is durable): WARM START for both lists.
    """
    info = Dataset()
    info.SCPStatus = "GOING DOWN" if going_down else "RESTARTED"
    info.SubscriptionListStatus = "WARM START"
    info.UnifiedProcedureStepListStatus = "WARM START"
    return _events(GLOBAL, [(EventType.SCP_STATUS_CHANGE, info)], subscribers)
