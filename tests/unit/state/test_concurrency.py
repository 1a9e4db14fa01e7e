"""Several processes on one state database, on both backends.

Two claimers of the same step: exactly one wins, the other gets 0xC302.
A process killed (SIGKILL) inside a transaction leaves nothing half applied.
Two event senders claiming the same outbox deliver each event once.
Every child is forked, opens its own connection (the store detects the new
pid), is bounded in time, and reports through a pipe.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.ups import backend_for, scheduled
from wlmd.state import schema
from wlmd.state.backends import StoreError
from wlmd.state.repository import UpsRepository

CTX = multiprocessing.get_context("fork")
TIMEOUT = 30.0
ROUNDS = 10


def _child(target: Callable[..., Any], *args: Any) -> tuple[Any, Connection]:
    parent_end, child_end = CTX.Pipe()
    proc = CTX.Process(target=target, args=(child_end, *args), daemon=True)
    proc.start()
    child_end.close()
    return proc, parent_end


def _receive(conn: Connection) -> Any:
    if not conn.poll(TIMEOUT):
        raise AssertionError(f"no answer from a child within {TIMEOUT}s")
    return conn.recv()


def _claimer(conn: Connection, repo: UpsRepository, uids: list[str], tuid: str, go: Any) -> None:
    go.wait(TIMEOUT)
    conn.send([repo.change_state(uid, "IN PROGRESS", tuid, tuid).status for uid in uids])


def test_two_processes_claiming_the_same_steps(repo: UpsRepository) -> None:
    uids = [repo.create(None, scheduled()).uid for _ in range(ROUNDS)]
    repo.close()  # the children connect on their own
    go = CTX.Event()
    children = [_child(_claimer, repo, uids, f"1.2.3.{n}", go) for n in (1, 2)]
    go.set()
    results = [_receive(conn) for _, conn in children]
    for proc, _ in children:
        proc.join(TIMEOUT)
    for first, second in zip(*results, strict=True):
        assert sorted((first, second)) == [0x0000, 0xC302]
    winners = {
        uid: ("1.2.3.1" if a == 0 else "1.2.3.2") for uid, a in zip(uids, results[0], strict=True)
    }
    for uid, winner in winners.items():
        loser = "1.2.3.2" if winner == "1.2.3.1" else "1.2.3.1"
        assert repo.change_state(uid, "CANCELED", loser).status == 0xC301
        assert repo.change_state(uid, "CANCELED", winner).status == 0  # the claim's UID


def _stuck_in_transaction(conn: Connection, location: str, uid: str) -> None:
    """Change state, and stop dead after the step's row is updated, before the
    events are written and the transaction commits (the parent kills us)."""

    def tracer(sql: str) -> None:
        if sql.startswith("INSERT INTO outbox"):
            conn.send("inside")
            signal.pause()

    backend = backend_for(location)
    backend.tracer = tracer
    UpsRepository(backend).change_state(uid, "IN PROGRESS", "1.2.3.4", "KILLED")


def test_kill_inside_a_transaction_leaves_nothing_half_applied(
    repo: UpsRepository, location: str
) -> None:
    uid = repo.create(None, scheduled()).uid
    ds = Dataset()
    ds.ReceivingAE = "WATCHER"
    ds.DeletionLock = "FALSE"
    assert repo.subscribe(uid, ds).status == 0
    before = repo.outbox.pending()
    repo.close()
    proc, conn = _child(_stuck_in_transaction, location, uid)
    assert _receive(conn) == "inside"
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(TIMEOUT)
    assert proc.exitcode == -signal.SIGKILL
    got = repo.get(uid).dataset
    assert got is not None and got.ProcedureStepState == "SCHEDULED"
    assert repo.outbox.pending() == before
    # The lock died with the process: the next claimer is served at once.
    assert repo.change_state(uid, "IN PROGRESS", "1.2.3.5", "NEXT").status == 0


def _sender(conn: Connection, repo: UpsRepository, owner: str, go: Any) -> None:
    go.wait(TIMEOUT)
    delivered: list[tuple[int, str, str]] = []
    idle = 0
    while idle < 3:
        batch = repo.outbox.claim(owner, limit=5)
        idle = idle + 1 if not batch else 0
        for d in batch:
            if repo.outbox.ack(d.id, owner):
                delivered.append((d.id, d.uid, d.subscriber))
    conn.send(delivered)


def test_two_senders_deliver_each_event_once_in_order(repo: UpsRepository) -> None:
    uids = [repo.create(None, scheduled()).uid for _ in range(ROUNDS)]
    for ae in ("A", "B", "C"):
        ds = Dataset()
        ds.ReceivingAE = ae
        ds.DeletionLock = "FALSE"
        for uid in uids:
            assert repo.subscribe(uid, ds).status == 0
    for n, uid in enumerate(uids):
        assert repo.change_state(uid, "IN PROGRESS", f"1.2.{n}").status == 0
    total = repo.outbox.pending()
    assert total == ROUNDS * 3 * 2
    repo.close()
    go = CTX.Event()
    children = [_child(_sender, repo, owner, go) for owner in ("s1", "s2")]
    go.set()
    got = [_receive(conn) for _, conn in children]
    ids = [i for part in got for i, _, _ in part]
    assert len(ids) == len(set(ids)) == total
    for part in got:  # within one sender, one (step, subscriber)'s events come in order
        by_pair: dict[tuple[str, str], list[int]] = {}
        for i, uid, sub in part:
            by_pair.setdefault((uid, sub), []).append(i)
        assert all(v == sorted(v) for v in by_pair.values())
    assert repo.outbox.pending() == 0


def test_a_newer_schema_is_refused(repo: UpsRepository, location: str) -> None:
    repo.get("1.2")  # creates the schema
    with repo.backend.transaction() as tx:
        tx.execute("UPDATE wlmd_schema SET version = ?", (schema.LATEST + 1,))
    repo.close()
    fresh = UpsRepository(backend_for(location))
    with pytest.raises(StoreError, match="newer than this wlmd"):
        fresh.get("1.2")
    with pytest.raises(StoreError):  # and again: it never half-opens
        fresh.get("1.2")


def _uses_parent_store(conn: Connection, repo: UpsRepository, uid: str) -> None:
    conn.send((repo.get(uid).status, id(repo.backend.connection()) != conn_id_of_parent))


conn_id_of_parent = 0


def test_a_forked_child_opens_its_own_connection(repo: UpsRepository) -> None:
    global conn_id_of_parent
    uid = repo.create(None, scheduled()).uid
    conn_id_of_parent = id(repo.backend.connection())
    proc, conn = _child(_uses_parent_store, repo, uid)
    status, own = _receive(conn)
    proc.join(TIMEOUT)
    assert (status, own) == (0, True)
    assert repo.get(uid).status == 0  # the parent's connection still works
