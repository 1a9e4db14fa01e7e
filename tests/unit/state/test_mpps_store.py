"""The MPPS repository on SQLite and on a real PostgreSQL (fixtures in conftest.py)."""

from __future__ import annotations

import multiprocessing

from tests.helpers.mpps import completed, in_progress
from tests.helpers.ups import backend_for
from wlmd.mpps import rules
from wlmd.state.mpps import MppsRepository


def repo(location: str) -> MppsRepository:
    return MppsRepository(backend_for(location))


def test_create_set_complete_and_no_more(location: str) -> None:
    store = repo(location)
    created = store.create("1.2.3.4", in_progress("1.2.3", "SPS7"))
    assert created.status == 0 and created.uid == "1.2.3.4"
    assert store.create("1.2.3.4", in_progress()).status == rules.DUPLICATE_SOP_INSTANCE
    done = store.set("1.2.3.4", completed())
    assert done.status == 0
    again = store.set("1.2.3.4", completed("DISCONTINUED"))
    assert (again.status, again.error_id) == (0x0110, 0xA710)
    stored = store.get("1.2.3.4")
    assert stored is not None and stored.status == "COMPLETED"
    assert stored.link == rules.Link("1.2.3", "SPS7", "ACC1") and stored.final_at is not None
    assert store.set("9.9.9", completed()).status == rules.NO_SUCH_SOP_INSTANCE
    store.close()


def test_the_scp_assigns_a_uid_when_none_is_given(location: str) -> None:
    store = repo(location)
    created = store.create(None, in_progress())
    assert created.status == 0 and created.uid
    assert store.get(created.uid) is not None
    store.close()


def test_purge_final_keeps_in_progress(location: str) -> None:
    store = repo(location)
    store.create("1.1", in_progress())
    store.create("1.2", in_progress())
    store.set("1.2", completed())
    assert store.purge_final(older_than=-1.0) == 1
    assert store.get("1.1") is not None and store.get("1.2") is None
    store.close()


def _finish(location: str, status: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = repo(location)
    results.put(store.set("2.2", completed(status)).status)
    store.close()


def test_two_processes_ending_one_step_one_wins(location: str) -> None:
    store = repo(location)
    store.create("2.2", in_progress())
    store.close()
    results: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_finish, args=(location, s, results))
        for s in ("COMPLETED", "DISCONTINUED")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert sorted(results.get(timeout=5) for _ in workers) == [0x0000, 0x0110]
