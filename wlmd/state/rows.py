"""What the store's operations share: the SCP's policy, their result, a step's
row, and the statements every operation uses (load and lock, subscribers, subscribe)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset

from wlmd.state import codec
from wlmd.state.backends import Tx
from wlmd.ups import states
from wlmd.ups.states import State

COLUMNS = "uid, state, transaction_uid, performer_ae, dataset"

#: PostgreSQL advisory lock between creating steps (shared) and making a global
#: subscription (exclusive): a step created on another node while the subscription
#: is made is either among the existing steps it covers or sees the subscription.
#: (SQLite's write lock already serialises the two.)
_GLOBAL_LOCK = 0x776C6D65


@dataclass
class Policy:
    """The SCP's choices that the standard leaves open."""

    default_worklist_label: str = "wlmd"
    #: Grant Deletion Locks on global subscriptions (else warning B301).
    lock_global: bool = True
    #: Whether a Receiving AE is one the SCP can send events to (else 0xC308).
    known_ae: Callable[[str], bool] = field(default=lambda _ae: True)


@dataclass(frozen=True)
class Result:
    """An operation's DIMSE status, Offending Element tags, data set and log reason."""

    status: int
    uid: str = ""
    dataset: Dataset | None = None
    offending: tuple[int, ...] = ()
    reason: str = ""
    events: int = 0

    @property
    def failed(self) -> bool:
        return states.is_failure(self.status)


@dataclass(frozen=True)
class Row:
    uid: str
    state: State
    transaction_uid: str | None
    performer_ae: str | None
    dataset: Dataset

    @classmethod
    def of(cls, values: tuple[object, ...]) -> Row:
        uid, state, tuid, performer, data = values
        return cls(str(uid), State(state), tuid, performer, codec.decode(data))  # type: ignore[arg-type]


def load(tx: Tx, uid: str, lock: bool) -> Row | None:
    """The step, its row locked for the transaction when ``lock`` (PostgreSQL;
    SQLite's ``BEGIN IMMEDIATE`` already holds the database's write lock)."""
    sql = f"SELECT {COLUMNS} FROM ups WHERE uid = ?"
    if lock and tx.dialect == "postgresql":
        sql += " FOR UPDATE"
    rows = tx.execute(sql, (uid,))
    return Row.of(rows[0]) if rows else None


def subscribers(tx: Tx, uid: str) -> tuple[str, ...]:
    rows = tx.execute("SELECT ae FROM subscription WHERE uid = ? ORDER BY ae", (uid,))
    return tuple(r[0] for r in rows)


def subscribe(tx: Tx, uid: str, ae: str, lock: bool) -> None:
    tx.execute(
        "INSERT INTO subscription (uid, ae, deletion_lock) VALUES (?, ?, ?)"
        " ON CONFLICT (uid, ae) DO UPDATE SET deletion_lock = excluded.deletion_lock",
        (uid, ae, int(lock)),
    )


def global_lock(tx: Tx, shared: bool) -> None:
    if tx.dialect == "postgresql":
        kind = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
        tx.execute(f"SELECT {kind}(?)", (_GLOBAL_LOCK,))
