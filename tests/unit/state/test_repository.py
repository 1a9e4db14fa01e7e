"""The UPS state store on both backends: one transaction per operation, events in the outbox."""

from __future__ import annotations

from collections.abc import Callable

from pydicom.dataset import Dataset

from tests.helpers.ups import Clock, performed, scheduled
from wlmd.state.repository import Policy, UpsRepository
from wlmd.ups import states, subscriptions
from wlmd.ups.query import parse_query
from wlmd.ups.subscriptions import EventType

TUID = "1.2.826.0.1.3680043.10.1.1"


def watch(repo: UpsRepository, uid: str, ae: str = "WATCHER", lock: bool = False) -> None:
    ds = Dataset()
    ds.ReceivingAE = ae
    ds.DeletionLock = "TRUE" if lock else "FALSE"
    assert repo.subscribe(uid, ds).status == 0


def drain(repo: UpsRepository, owner: str = "test") -> list[tuple[str, EventType, str]]:
    """Deliver every due event in order: (subscriber, type, state in the event or '')."""
    seen = []
    for _ in range(100):
        batch = repo.outbox.claim(owner)
        if not batch:
            return seen
        for d in batch:
            seen.append((d.subscriber, d.type, str(d.info.get("ProcedureStepState", ""))))
            assert repo.outbox.ack(d.id, owner)
    raise AssertionError("outbox never drained")


def test_create_assigns_a_uid_and_get_returns_it(repo: UpsRepository) -> None:
    made = repo.create(None, scheduled())
    assert made.status == 0, made.reason
    assert made.uid.startswith("2.25.")
    got = repo.get(made.uid)
    assert got.status == 0 and got.dataset is not None
    assert got.dataset.SOPInstanceUID == made.uid
    assert got.dataset.ProcedureStepState == "SCHEDULED"


def test_duplicate_and_unknown_instances(repo: UpsRepository) -> None:
    assert repo.create("1.2.3", scheduled()).status == 0
    assert repo.create("1.2.3", scheduled()).status == states.DUPLICATE_SOP_INSTANCE
    assert repo.get("9.9").status == states.NO_SUCH_UPS
    assert repo.set("9.9", Dataset()).status == states.NO_SUCH_UPS
    assert repo.change_state("9.9", "IN PROGRESS", TUID).status == states.NO_SUCH_UPS
    assert repo.request_cancel("9.9", Dataset()).status == states.NO_SUCH_UPS


def test_refused_create_stores_nothing(repo: UpsRepository) -> None:
    assert repo.create("1.2.3", scheduled(ProcedureStepState="COMPLETED")).status == 0xC309
    assert repo.get("1.2.3").status == states.NO_SUCH_UPS


def test_claim_progress_complete_workflow(repo: UpsRepository) -> None:
    uid = repo.create(None, scheduled()).uid
    watch(repo, uid)
    progress = Dataset()
    item = Dataset()
    item.ProcedureStepProgress = "10"
    progress.ProcedureStepProgressInformationSequence = [item]
    assert repo.set(uid, progress).status == 0  # SCHEDULED: no Transaction UID needed
    assert repo.change_state(uid, "IN PROGRESS", None).status == 0xC301
    assert repo.change_state(uid, "IN PROGRESS", TUID, "MODALITY").status == 0
    assert repo.change_state(uid, "IN PROGRESS", "1.2.9", "OTHER").status == 0xC302
    progress.TransactionUID = "1.2.9"
    assert repo.set(uid, progress).status == 0xC301
    progress.TransactionUID = TUID
    item.ProcedureStepProgress = "50"
    assert repo.set(uid, progress).status == 0
    assert repo.change_state(uid, "COMPLETED", TUID).status == 0xC304
    done = performed(Dataset())
    done.TransactionUID = TUID
    assert repo.set(uid, done).status == 0
    assert repo.change_state(uid, "COMPLETED", "1.2.9").status == 0xC301
    assert repo.change_state(uid, "COMPLETED", TUID).status == 0
    assert repo.change_state(uid, "COMPLETED", TUID).status == 0xB306
    assert repo.set(uid, done).status == 0xC300
    got = repo.get(uid).dataset
    assert got is not None and got.ProcedureStepState == "COMPLETED"
    assert "TransactionUID" not in got
    assert drain(repo) == [
        ("WATCHER", EventType.STATE_REPORT, "SCHEDULED"),  # the initial report
        ("WATCHER", EventType.PROGRESS_REPORT, ""),
        ("WATCHER", EventType.STATE_REPORT, "IN PROGRESS"),
        ("WATCHER", EventType.PROGRESS_REPORT, ""),
        ("WATCHER", EventType.STATE_REPORT, "COMPLETED"),
    ]


def test_request_cancel(repo: UpsRepository) -> None:
    scheduled_uid = repo.create(None, scheduled()).uid
    watch(repo, scheduled_uid)
    why = Dataset()
    why.ReasonForCancellation = "duplicate order"
    assert repo.request_cancel(scheduled_uid, why, "RIS").status == 0
    assert repo.get(scheduled_uid).dataset.ProcedureStepState == "CANCELED"  # type: ignore[union-attr]
    assert repo.request_cancel(scheduled_uid, why, "RIS").status == 0xB304

    running = repo.create(None, scheduled()).uid
    assert repo.change_state(running, "IN PROGRESS", TUID, "MODALITY").status == 0
    assert repo.request_cancel(running, why, "RIS").status == 0xC312  # performer not subscribed
    watch(repo, running, "MODALITY")
    assert repo.request_cancel(running, why, "RIS").status == 0
    assert repo.get(running).dataset.ProcedureStepState == "IN PROGRESS"  # type: ignore[union-attr]
    events = drain(repo)
    assert ("WATCHER", EventType.STATE_REPORT, "IN PROGRESS") in events
    assert ("WATCHER", EventType.STATE_REPORT, "CANCELED") in events
    assert ("MODALITY", EventType.CANCEL_REQUESTED, "") in events
    assert repo.change_state(running, "CANCELED", TUID).status == 0
    assert repo.request_cancel(running, why).status == 0xB304


def test_global_subscription_covers_existing_and_new_steps(repo: UpsRepository) -> None:
    old = repo.create(None, scheduled(WorklistLabel="CT")).uid
    filtered = Dataset()
    filtered.ReceivingAE = "CTWATCH"
    filtered.DeletionLock = "FALSE"
    filtered.WorklistLabel = "CT"
    assert repo.subscribe(subscriptions.FILTERED_GLOBAL, filtered).status == 0
    watch(repo, subscriptions.GLOBAL, "ALL")
    new_ct = repo.create(None, scheduled(WorklistLabel="CT")).uid
    new_mr = repo.create(None, scheduled(WorklistLabel="MR")).uid
    events = drain(repo)
    assert sorted((s, t) for s, t, _ in events) == sorted(
        [("CTWATCH", EventType.STATE_REPORT)] * 2 + [("ALL", EventType.STATE_REPORT)] * 3
    )
    assert {old, new_ct, new_mr}  # three distinct steps
    unsub = Dataset()
    unsub.ReceivingAE = "ALL"
    assert repo.suspend_global(subscriptions.GLOBAL, unsub).status == 0
    repo.create(None, scheduled(WorklistLabel="US"))  # no global subscription covers it
    assert repo.change_state(new_mr, "IN PROGRESS", TUID).status == 0
    assert drain(repo) == [("ALL", EventType.STATE_REPORT, "IN PROGRESS")]  # instance subs stay
    assert repo.unsubscribe(subscriptions.GLOBAL, unsub).status == 0
    assert repo.change_state(new_ct, "IN PROGRESS", TUID).status == 0
    assert drain(repo) == [("CTWATCH", EventType.STATE_REPORT, "IN PROGRESS")]


def test_unknown_receiving_ae_is_c308(make_repo: Callable[..., UpsRepository]) -> None:
    repo = make_repo(Policy(known_ae={"KNOWN"}.__contains__))
    uid = repo.create(None, scheduled()).uid
    ds = Dataset()
    ds.ReceivingAE = "STRANGER"
    ds.DeletionLock = "FALSE"
    assert repo.subscribe(uid, ds).status == 0xC308
    assert repo.subscribe("9.9", Dataset()).status == 0x0120
    ds.ReceivingAE = "KNOWN"
    assert repo.subscribe("9.9", ds).status == states.NO_SUCH_UPS


def test_find_narrows_then_matches(repo: UpsRepository) -> None:
    for day, label in (("14", "CT"), ("15", "CT"), ("16", "MR")):
        start = f"203005{day}090000"
        repo.create(None, scheduled(ScheduledProcedureStepStartDateTime=start, WorklistLabel=label))
    q = Dataset()
    q.ScheduledProcedureStepStartDateTime = "20300515-"
    q.WorklistLabel = "CT"
    q.PatientName = "D*"
    found = repo.find(parse_query(q))
    assert [ds.ScheduledProcedureStepStartDateTime for ds in found] == ["20300515090000"]
    q.PatientName = "X*"
    assert repo.find(parse_query(q)) == []
    assert len(repo.find(parse_query(Dataset()))) == 3
    assert len(repo.find(parse_query(Dataset()), limit=2)) == 2


def test_housekeeping_respects_delay_and_deletion_lock(repo: UpsRepository, clock: Clock) -> None:
    kept, locked, gone = (repo.create(None, scheduled()).uid for _ in range(3))
    watch(repo, locked, "ARCHIVE", lock=True)
    for uid in (kept, locked, gone):
        assert repo.request_cancel(uid, Dataset()).status == 0
    clock.now += 100
    assert repo.housekeeping(completed_delay=3600, canceled_delay=3600).canceled == 0
    assert repo.change_state(kept, "CANCELED", None).status == 0xC301  # still there
    clock.now += 3600
    drain(repo)
    result = repo.housekeeping(completed_delay=3600, canceled_delay=60, delivered_retention=0)
    assert (result.canceled, result.completed, result.locked) == (2, 0, 1)
    assert result.delivered_events > 0
    assert repo.get(locked).status == 0
    assert repo.get(gone).status == states.NO_SUCH_UPS


def test_housekeeping_gives_up_events_never_delivered_and_keeps_leased_ones(
    repo: UpsRepository, clock: Clock
) -> None:
    old = repo.create(None, scheduled()).uid
    watch(repo, old, "GONE")  # a subscriber that never takes anything
    watch(repo, old, "BUSY")  # one whose event is being sent right now
    clock.now += 50
    recent = repo.create(None, scheduled()).uid
    watch(repo, recent, "GONE")
    (busy,) = repo.outbox.claim("sender", subscriber="BUSY", lease=120)
    clock.now += 60
    result = repo.housekeeping(3600, 3600, undelivered_expiry=120)
    assert result.expired_events == {}  # 110 s and 60 s old: not yet
    clock.now += 15  # the old events are 125 s old, the recent one 75 s
    result = repo.housekeeping(3600, 3600, undelivered_expiry=120)
    assert result.expired_events == {"GONE": 1}  # BUSY's is leased: left to its sender
    assert [(ae, s) for ae, _, s in drain(repo)] == [("GONE", "SCHEDULED")]  # the recent one
    assert repo.outbox.ack(busy.id, "sender")
    assert repo.outbox.pending() == 0
    assert repo.housekeeping(3600, 3600).expired_events == {}  # None: nothing given up


def test_outbox_retry_backs_off(repo: UpsRepository, clock: Clock) -> None:
    uid = repo.create(None, scheduled()).uid
    watch(repo, uid)
    (first,) = repo.outbox.claim("a")
    assert repo.outbox.claim("b") == []  # leased
    repo.outbox.retry(first.id, "a", "connection refused")
    assert repo.outbox.claim("b") == []  # not due yet: 1 s backoff
    clock.now += 1.0
    (again,) = repo.outbox.claim("b")
    assert (again.id, again.attempts) == (first.id, 1)
    assert not repo.outbox.ack(again.id, "a")  # a lost its lease
    assert repo.outbox.ack(again.id, "b")
    assert repo.outbox.pending() == 0


def test_scp_status_change_reaches_every_subscriber(repo: UpsRepository) -> None:
    uid = repo.create(None, scheduled()).uid
    watch(repo, uid, "ONE")
    watch(repo, subscriptions.GLOBAL, "TWO")
    drain(repo)
    assert repo.scp_status_change(going_down=True).events == 2
    assert sorted(s for s, t, _ in drain(repo) if t is EventType.SCP_STATUS_CHANGE) == [
        "ONE",
        "TWO",
    ]
