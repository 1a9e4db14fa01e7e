"""The event outbox: written with the change, delivered later, each row once.

``enqueue`` runs inside the transaction of the change that produced the
events (so an event exists if and only if its change was committed). An
event sender ``claim``s due rows under a lease, delivers them, then ``ack``s
(delivered) or ``retry``s (attempts + 1, next attempt after :func:`backoff`).

Order per step and subscriber: a row is claimable only when no earlier row
of the same (step, subscriber) is still undelivered, so a subscriber sees one
step's events in order, while other subscribers and other steps go on. Two
senders (two processes, two nodes) never claim the same row: SQLite takes
the write lock for the claim; PostgreSQL claims with ``FOR UPDATE SKIP
LOCKED``; the lease then keeps the row until it is acknowledged, retried or
the lease runs out (a sender killed mid-delivery: the row is delivered again
after the lease, so delivery is at least once, and exactly once otherwise).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

from pydicom.dataset import Dataset

from wlmd.state import codec
from wlmd.state.backends import Backend, Tx
from wlmd.ups.subscriptions import Event, EventType

#: Retry delays: 1 s doubling up to 5 minutes.
BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0


def backoff(attempts: int, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> float:
    """Seconds before the next attempt after ``attempts`` failed ones."""
    return min(cap, base * 2 ** max(0, attempts - 1))


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox row: an N-EVENT-REPORT to send to ``subscriber``."""

    id: int
    uid: str
    subscriber: str
    type: EventType
    info: Dataset
    attempts: int


def enqueue(tx: Tx, events: Iterable[Event], now: float) -> int:
    """Write ``events`` (one row per subscriber) in the caller's transaction."""
    count = 0
    for event in events:
        info = codec.encode(event.info)
        for subscriber in event.subscribers:
            tx.execute(
                "INSERT INTO outbox (ups_uid, subscriber, event_type, info, created_at,"
                " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?)",
                (event.uid, subscriber, int(event.type), info, now, now),
            )
            count += 1
    return count


_DUE = (
    "SELECT id FROM outbox o WHERE delivered_at IS NULL AND next_attempt_at <= ?"
    " AND (lease_until IS NULL OR lease_until < ?)"
    " AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.subscriber = o.subscriber"
    " AND e.ups_uid = o.ups_uid AND e.delivered_at IS NULL AND e.id < o.id)"
)


class Outbox:
    """Claiming, acknowledging and retrying events (the event sender's side)."""

    def __init__(self, backend: Backend, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock

    def claim(
        self,
        owner: str,
        limit: int = 20,
        lease: float = 60.0,
        *,
        subscriber: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[Delivery]:
        """Up to ``limit`` due events, leased to ``owner`` for ``lease`` seconds.

        ``subscriber``: only that subscriber's (a sender batching on an open
        association); ``exclude``: none of these subscribers' (a sender that is
        still busy with them leaves their rows to itself later, or to another node).
        """
        now = self.clock()
        due = _DUE
        params: list[object] = [now, now]
        if subscriber is not None:
            due += " AND o.subscriber = ?"
            params.append(subscriber)
        if exclude:
            due += f" AND o.subscriber NOT IN ({', '.join('?' * len(exclude))})"
            params.extend(exclude)
        due += " ORDER BY id LIMIT ?"
        with self.backend.transaction() as tx:
            due += " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgresql" else ""
            ids = [row[0] for row in tx.execute(due, (*params, limit))]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            tx.execute(
                f"UPDATE outbox SET lease_owner = ?, lease_until = ? WHERE id IN ({marks})",
                (owner, now + lease, *ids),
            )
            rows = tx.execute(
                "SELECT id, ups_uid, subscriber, event_type, info, attempts FROM outbox"
                f" WHERE id IN ({marks}) ORDER BY id",
                ids,
            )
        return [
            Delivery(int(i), uid, sub, EventType(kind), codec.decode(info), int(attempts))
            for i, uid, sub, kind, info, attempts in rows
        ]

    def ack(self, event_id: int, owner: str) -> bool:
        """Mark delivered; False when the lease was lost (another sender has it)."""
        with self.backend.transaction() as tx:
            return (
                tx.rowcount(
                    "UPDATE outbox SET delivered_at = ?, lease_owner = NULL, lease_until = NULL"
                    " WHERE id = ? AND lease_owner = ? AND delivered_at IS NULL",
                    (self.clock(), event_id, owner),
                )
                == 1
            )

    def retry(self, event_id: int, owner: str, error: str, delay: float | None = None) -> None:
        """Give the row back: one more attempt, due after ``delay`` (default :func:`backoff`)."""
        now = self.clock()
        with self.backend.transaction() as tx:
            rows = tx.execute(
                "SELECT attempts FROM outbox WHERE id = ? AND lease_owner = ?", (event_id, owner)
            )
            if not rows:
                return
            attempts = int(rows[0][0]) + 1
            wait = backoff(attempts) if delay is None else delay
            tx.execute(
                "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (attempts, now + wait, error[:500], event_id),
            )

    def release(self, owner_prefix: str) -> int:
        """Give back the leases of owners named ``owner_prefix…`` (this node's sender,
        killed before it acknowledged): due again at once instead of after the lease."""
        with self.backend.transaction() as tx:
            return tx.rowcount(
                "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
                " WHERE delivered_at IS NULL AND substr(lease_owner, 1, ?) = ?",
                (len(owner_prefix), owner_prefix),
            )

    def pending(self) -> int:
        """Events not delivered yet."""
        with self.backend.transaction(write=False) as tx:
            return int(tx.execute("SELECT COUNT(*) FROM outbox WHERE delivered_at IS NULL")[0][0])

    def next_due(self) -> float | None:
        """When the earliest undelivered event is due (for the sender's sleep)."""
        with self.backend.transaction(write=False) as tx:
            row = tx.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE delivered_at IS NULL")[
                0
            ][0]
        return None if row is None else float(row)
