"""The UPS state store: one transaction per DICOM operation, on either backend.

Each operation reads the step under a write lock (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: ``SELECT … FOR UPDATE`` on its row), asks the pure
rules (``wlmd.ups``) what to do, writes the new state and its events to the
outbox, and commits — or changes nothing. So a second claimer, in another
process or on another node, sees the first claim and gets 0xC302; a process
killed in the middle leaves the transaction uncommitted (rolled back by
SQLite's WAL recovery or by the PostgreSQL server).

Results carry the DIMSE status, Offending Element tags and a reason for the
log; the service turns them into responses. Nothing here logs patient data.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from wlmd.state import codec, outbox, rows, schema
from wlmd.state.backends import Backend, Tx
from wlmd.state.rows import Policy, Result, Row
from wlmd.state.subscribing import Subscribing
from wlmd.ups import attributes, states, subscriptions, table
from wlmd.ups.query import UpsQuery
from wlmd.ups.states import Action, State, Tuid

__all__ = ["Housekeeping", "Policy", "Result", "UpsRepository"]


@dataclass(frozen=True)
class Housekeeping:
    """What one housekeeping pass deleted, and what a deletion lock kept."""

    completed: int = 0
    canceled: int = 0
    locked: int = 0
    delivered_events: int = 0
    #: undelivered events given up, by subscriber AE title
    expired_events: Mapping[str, int] = field(default_factory=dict)


class UpsRepository(Subscribing):
    """Create, change, query and subscribe to UPS instances (PS3.4 CC.2)."""

    def __init__(
        self,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
        policy: Policy | None = None,
    ) -> None:
        self.backend = backend
        self.clock = clock
        self.policy = policy or Policy()
        self.outbox = outbox.Outbox(backend, clock)
        backend.on_connect(schema.ensure_schema)

    def close(self) -> None:
        self.backend.close()

    def check(self) -> None:
        """Open the database now, creating or migrating its schema; StoreError if unusable.

        The supervisor calls it before READY=1, so that a bad location stops
        start-up instead of failing the first UPS operation.
        """
        with self.backend.transaction(write=False) as tx:
            tx.execute("SELECT 1")

    # --- reading and locking ------------------------------------------------------

    def _enqueue(self, tx: Tx, events: Iterable[subscriptions.Event]) -> int:
        return outbox.enqueue(tx, events, self.clock())

    def _store(self, tx: Tx, row: Row, ds: Dataset, state: State, **extra: object) -> None:
        start, label, patient = codec.columns(ds)
        now = self.clock()
        sets = {
            "state": state.value,
            "dataset": codec.encode(ds),
            "start_dt": start,
            "worklist_label": label,
            "patient_id": patient,
            "updated_at": now,
            **extra,
        }
        if state.is_final and not row.state.is_final:
            sets["final_at"] = now
        assignments = ", ".join(f"{k} = ?" for k in sets)
        tx.execute(f"UPDATE ups SET {assignments} WHERE uid = ?", (*sets.values(), row.uid))

    # --- N-CREATE, N-SET, N-GET ------------------------------------------------------

    def create(self, uid: str | None, request: Dataset) -> Result:
        """N-CREATE (CC.2.5): a SCHEDULED step; the SCP assigns the UID when none is given."""
        uid = uid or generate_uid(prefix=None)
        check = attributes.check_create(
            request,
            uid,
            codec.datetime_value(self.clock()),
            default_worklist_label=self.policy.default_worklist_label,
        )
        if check.failed or check.dataset is None:
            return Result(check.status, uid, None, check.offending, check.reason)
        ds = check.dataset
        try:
            with self.backend.transaction() as tx:
                rows.global_lock(tx, shared=True)
                if tx.execute("SELECT 1 FROM ups WHERE uid = ?", (uid,)):
                    return Result(states.DUPLICATE_SOP_INSTANCE, uid, reason="duplicate")
                now = self.clock()
                tx.execute(
                    "INSERT INTO ups (uid, state, start_dt, worklist_label, patient_id, dataset,"
                    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (uid, State.SCHEDULED.value, *codec.columns(ds), codec.encode(ds), now, now),
                )
                for ae, lock, keys in tx.execute(
                    "SELECT ae, deletion_lock, filter FROM global_subscription ORDER BY ae"
                ):
                    if subscriptions.applies(codec.decode(keys) if keys else None, ds):
                        rows.subscribe(tx, uid, ae, bool(lock))
                events = self._enqueue(
                    tx, subscriptions.on_create(uid, ds, rows.subscribers(tx, uid))
                )
        except Exception as exc:
            if self.backend.is_unique_violation(exc):  # a concurrent create on another node
                return Result(states.DUPLICATE_SOP_INSTANCE, uid, reason="duplicate")
            raise
        return Result(check.status, uid, ds, reason=check.reason, events=events)

    def set(self, uid: str, modification: Dataset) -> Result:
        """N-SET (CC.2.6) under the Transaction UID rules of the state machine."""
        given = attributes.text(modification, table.TRANSACTION_UID) or None
        with self.backend.transaction() as tx:
            row = rows.load(tx, uid, lock=True)
            tuid = Tuid.compare(given, row.transaction_uid if row else None)
            outcome = states.transition(row.state if row else None, Action.SET, tuid)
            if row is None or states.is_failure(outcome.status):
                return Result(outcome.status, uid, reason=f"N-SET {tuid.value} Transaction UID")
            check = attributes.check_set(
                row.dataset, modification, codec.datetime_value(self.clock())
            )
            if check.failed or check.dataset is None:
                return Result(check.status, uid, None, check.offending, check.reason)
            self._store(tx, row, check.dataset, row.state)
            events = self._enqueue(
                tx,
                subscriptions.on_set(uid, check.dataset, check.changed, rows.subscribers(tx, uid)),
            )
        return Result(check.status, uid, check.dataset, events=events)

    def get(self, uid: str, tags: Iterable[int] | None = None) -> Result:
        """N-GET (CC.2.7): the attributes asked for (all when None), never the Transaction UID."""
        with self.backend.transaction(write=False) as tx:
            row = rows.load(tx, uid, lock=False)
        if row is None:
            return Result(states.NO_SUCH_UPS, uid, reason="no such UPS")
        return Result(states.SUCCESS, uid, attributes.select(row.dataset, tags))

    # --- N-ACTION 1 and 2 ------------------------------------------------------------

    def change_state(
        self, uid: str, target: str, transaction_uid: str | None, calling_ae: str = ""
    ) -> Result:
        """N-ACTION Change UPS State (CC.2.1); a claim records the new Transaction UID."""
        wanted = State.parse(target)
        if wanted is None:
            return Result(
                states.INVALID_ARGUMENT_VALUE,
                uid,
                offending=(table.PROCEDURE_STEP_STATE,),
                reason=f"no such state {target!r}",
            )
        action = states.action_for_target(wanted)
        with self.backend.transaction() as tx:
            row = rows.load(tx, uid, lock=True)
            tuid = Tuid.compare(transaction_uid, row.transaction_uid if row else None)
            outcome = states.transition(row.state if row else None, action, tuid)
            reason = f"{action.value} from {row.state.value if row else 'nothing'}"
            if row is None or outcome.state is None:
                return Result(outcome.status, uid, reason=reason)
            ds = row.dataset
            if wanted is State.CANCELED:
                attributes.supplement_cancel(ds, codec.datetime_value(self.clock()))
            if outcome.check_final:
                final = attributes.check_final(ds, wanted)
                if final.failed:
                    return Result(final.status, uid, None, final.offending, final.reason)
            ds.ProcedureStepState = wanted.value
            extra: dict[str, object] = {}
            if wanted is State.IN_PROGRESS:
                extra = {"transaction_uid": transaction_uid, "performer_ae": calling_ae}
            self._store(tx, row, ds, wanted, **extra)
            events = self._enqueue(
                tx, subscriptions.on_state_change(uid, ds, rows.subscribers(tx, uid))
            )
        return Result(outcome.status, uid, reason=reason, events=events)

    def request_cancel(self, uid: str, request: Dataset, calling_ae: str = "") -> Result:
        """N-ACTION Request Cancel (CC.2.2): cancels a SCHEDULED step, asks the performer
        of an IN PROGRESS one (Cancel Requested event)."""
        with self.backend.transaction() as tx:
            row = rows.load(tx, uid, lock=True)
            outcome = states.transition(row.state if row else None, Action.REQUEST_CANCEL)
            if row is None or states.is_failure(outcome.status):
                return Result(outcome.status, uid, reason="request cancel")
            subscribers = rows.subscribers(tx, uid)
            if outcome.cancel_requested:
                outcome = states.after_request_cancel(outcome, row.performer_ae in subscribers)
                if states.is_failure(outcome.status):
                    return Result(outcome.status, uid, reason="performer not subscribed")
                events = subscriptions.on_cancel_requested(uid, request, calling_ae, subscribers)
                return Result(outcome.status, uid, events=self._enqueue(tx, events))
            if outcome.state is None:
                return Result(outcome.status, uid, reason="already canceled")
            ds = row.dataset
            attributes.supplement_cancel(ds, codec.datetime_value(self.clock()), request)
            ds.ProcedureStepState = State.CANCELED.value
            self._store(tx, row, ds, State.CANCELED)
            events = subscriptions.on_state_change(uid, ds, subscribers, via_in_progress=True)
            return Result(outcome.status, uid, events=self._enqueue(tx, events))

    # --- N-ACTION 3, 4, 5 ------------------------------------------------------------

    # --- C-FIND ----------------------------------------------------------------------

    def find(self, query: UpsQuery, limit: int | None = None) -> list[Dataset]:
        """The steps matching ``query``: narrowed on indexed columns, decided by the matcher."""
        where, params = _where(query)
        sql = f"SELECT dataset FROM ups{where} ORDER BY start_dt, uid"
        with self.backend.transaction(write=False) as tx:
            rows = tx.execute(sql, params)
        found = []
        for (data,) in rows:
            ds = codec.decode(data)
            if query.matches(ds):
                found.append(ds)
                if limit is not None and len(found) >= limit:
                    break
        return found

    # --- events and housekeeping -----------------------------------------------------

    def housekeeping(
        self,
        completed_delay: float,
        canceled_delay: float,
        delivered_retention: float = 86400.0,
        undelivered_expiry: float | None = None,
    ) -> Housekeeping:
        """Delete final steps older than their delay unless a Deletion Lock holds them,
        delivered events older than ``delivered_retention``, and events still not
        delivered ``undelivered_expiry`` seconds after their change (counts only).

        The last bounds what a subscriber that is gone for good (switched off,
        removed from ``--ups-subscribers``) costs: without it its events would be
        retried every 5 minutes forever and its later events would wait behind
        them. A row leased to a sender right now is left to it.
        """
        now = self.clock()
        locked = (
            "EXISTS (SELECT 1 FROM subscription s WHERE s.uid = ups.uid AND s.deletion_lock = 1)"
        )
        counts = {}
        with self.backend.transaction() as tx:
            for state, delay in (
                (State.COMPLETED, completed_delay),
                (State.CANCELED, canceled_delay),
            ):
                counts[state] = tx.rowcount(
                    f"DELETE FROM ups WHERE state = ? AND final_at <= ? AND NOT {locked}",
                    (state.value, now - delay),
                )
            held = tx.execute(f"SELECT COUNT(*) FROM ups WHERE final_at IS NOT NULL AND {locked}")
            purged = tx.rowcount(
                "DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at <= ?",
                (now - delivered_retention,),
            )
            expired: dict[str, int] = {}
            if undelivered_expiry is not None:
                stale = (
                    " FROM outbox WHERE delivered_at IS NULL AND created_at <= ?"
                    " AND (lease_until IS NULL OR lease_until < ?)"
                )
                limits = (now - undelivered_expiry, now)
                for subscriber, count in tx.execute(
                    f"SELECT subscriber, COUNT(*){stale} GROUP BY subscriber", limits
                ):
                    expired[str(subscriber)] = int(count)
                tx.execute(f"DELETE{stale}", limits)
        return Housekeeping(
            counts[State.COMPLETED], counts[State.CANCELED], int(held[0][0]), purged, expired
        )


def _where(query: UpsQuery) -> tuple[str, list[object]]:
    n = query.narrowing
    clauses: list[str] = []
    params: list[object] = []
    for column, wanted in (
        ("state", n.states),
        ("uid", n.uids),
        ("worklist_label", n.worklist_labels),
        ("patient_id", n.patient_ids),
    ):
        if wanted:
            clauses.append(f"{column} IN ({', '.join('?' * len(wanted))})")
            params.extend(wanted)
    if n.start_low is not None:
        clauses.append("start_dt >= ?")
        params.append(n.start_low)
    if n.start_high is not None:
        clauses.append("start_dt <= ?")
        params.append(n.start_high)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
