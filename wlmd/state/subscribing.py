"""Subscriptions in the store: N-ACTION 3, 4, 5 (PS3.4 CC.2.3) and SCP Status Change.

The half of :class:`~wlmd.state.repository.UpsRepository` that manages who
is told: the rules are ``wlmd.ups.subscriptions``; here they are applied in
one transaction each, with the initial State Reports in the outbox.
"""

from __future__ import annotations

from collections.abc import Callable

from pydicom.dataset import Dataset

from wlmd.state import codec, outbox, rows
from wlmd.state.backends import Backend, Tx
from wlmd.state.rows import Policy, Result, Row
from wlmd.ups import states, subscriptions
from wlmd.ups.states import State
from wlmd.ups.subscriptions import Scope, Subscription


class Subscribing:
    """Subscribe, unsubscribe, suspend global, SCP Status Change."""

    backend: Backend
    clock: Callable[[], float]
    policy: Policy

    def subscribe(self, uid: str, info: Dataset) -> Result:
        """N-ACTION Subscribe (CC.2.3.2): the AE gets an initial State Report per step."""
        check, sub = subscriptions.parse_subscription(
            subscriptions.SUBSCRIBE,
            uid,
            info,
            self.policy.known_ae,
            lock_global=self.policy.lock_global,
        )
        if sub is None:
            return Result(check.status, uid, None, check.offending, check.reason)
        events: list[subscriptions.Event] = []
        with self.backend.transaction() as tx:
            if sub.scope is Scope.INSTANCE:
                row = rows.load(tx, uid, lock=True)
                if row is None:
                    return Result(states.NO_SUCH_UPS, uid, reason="no such UPS")
                rows.subscribe(tx, uid, sub.ae, sub.deletion_lock)
                steps = [row]
            else:
                steps = self._global_subscribe(tx, sub)
            for row in steps:
                report = subscriptions.state_report(row.dataset)
                events.append(
                    subscriptions.Event(
                        row.uid, subscriptions.EventType.STATE_REPORT, report, (sub.ae,)
                    )
                )
            count = outbox.enqueue(tx, events, self.clock())
        return Result(check.status, uid, reason=sub.scope.value, events=count)

    def _global_subscribe(self, tx: Tx, sub: Subscription) -> list[Row]:
        rows.global_lock(tx, shared=False)
        keys = codec.encode(sub.filter) if sub.filter is not None else None
        tx.execute(
            "INSERT INTO global_subscription (ae, deletion_lock, filter) VALUES (?, ?, ?)"
            " ON CONFLICT (ae) DO UPDATE SET deletion_lock = excluded.deletion_lock,"
            " filter = excluded.filter",
            (sub.ae, int(sub.deletion_lock), keys),
        )
        candidates = tx.execute(
            f"SELECT {rows.COLUMNS} FROM ups WHERE state IN (?, ?) ORDER BY uid",
            (State.SCHEDULED.value, State.IN_PROGRESS.value),
        )
        steps = []
        for values in candidates:
            row = Row.of(values)
            if subscriptions.applies(sub.filter, row.dataset):
                rows.subscribe(tx, row.uid, sub.ae, sub.deletion_lock)
                steps.append(row)
        return steps

    def unsubscribe(self, uid: str, info: Dataset) -> Result:
        """N-ACTION Unsubscribe (CC.2.3.3); from the global instances: every subscription."""
        check, sub = subscriptions.parse_subscription(
            subscriptions.UNSUBSCRIBE, uid, info, self.policy.known_ae
        )
        if sub is None:
            return Result(check.status, uid, None, check.offending, check.reason)
        with self.backend.transaction() as tx:
            if sub.scope is Scope.INSTANCE:
                if rows.load(tx, uid, lock=True) is None:
                    return Result(states.NO_SUCH_UPS, uid, reason="no such UPS")
                tx.execute("DELETE FROM subscription WHERE uid = ? AND ae = ?", (uid, sub.ae))
            else:
                tx.execute("DELETE FROM global_subscription WHERE ae = ?", (sub.ae,))
                tx.execute("DELETE FROM subscription WHERE ae = ?", (sub.ae,))
        return Result(states.SUCCESS, uid, reason=sub.scope.value)

    def suspend_global(self, uid: str, info: Dataset) -> Result:
        """N-ACTION Suspend Global Subscription (CC.2.3.4): no new instance subscriptions."""
        check, sub = subscriptions.parse_subscription(
            subscriptions.SUSPEND_GLOBAL, uid, info, self.policy.known_ae
        )
        if sub is None:
            return Result(check.status, uid, None, check.offending, check.reason)
        with self.backend.transaction() as tx:
            tx.execute("DELETE FROM global_subscription WHERE ae = ?", (sub.ae,))
        return Result(states.SUCCESS, uid, reason="suspended")

    def scp_status_change(self, going_down: bool) -> Result:
        """SCP Status Change to every subscribed AE (on start and on an orderly stop)."""
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "SELECT ae FROM subscription UNION SELECT ae FROM global_subscription ORDER BY ae"
            )
            events = subscriptions.scp_status_change(going_down, tuple(r[0] for r in rows))
            count = outbox.enqueue(tx, events, self.clock())
        return Result(states.SUCCESS, subscriptions.GLOBAL, events=count)
