"""--spare-workers: workers forked ahead, handed connections, reused, sent away, stopped.

Real wlmd over TCP on 127.0.0.1, queried with DCMTK's findscu and the raw
client; processes are read from /proc.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.rawclient import Association, identifier
from tests.helpers.worklists import complete_entry, make_area, write_wl

AREA = "WLMD"
WAIT = 10.0


def wait_for(condition: Callable[[], object], what: str) -> object:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)  # poll interval of /proc, not synchronisation
    pytest.fail(f"timed out waiting for {what}", pytrace=False)


def children(pid: int) -> dict[int, str]:
    kids: dict[int, str] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            listed = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, listed):
            with contextlib.suppress(OSError):
                kids[kid] = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return kids


def spares(server: servers.Server) -> list[int]:
    return [p for p, t in children(server.proc.pid).items() if "spare worker" in t]


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    make_area(tmp_path, AREA, {f"e{n}.wl": complete_entry(PatientID=f"P{n}") for n in range(3)})
    return tmp_path


def query(server: servers.Server, patient_id: str) -> int:
    with Association.open("127.0.0.1", server.port, AREA, io_timeout=WAIT) as assoc:
        result = assoc.find(identifier({"PatientID": patient_id}), deadline_s=WAIT)
        assert result.status == 0x0000
        assoc.release()
    return int(result.matches)


def served_by(log: str) -> list[str]:
    """The pid of each process that logged an association line, in order."""
    return re.findall(r"wlmd\[(\d+)\] INFO \[\S+\] association BENCH -> WLMD", log)


def test_spares_serve_associations_one_after_another(data_root: Path) -> None:
    with servers.wlmd(data_root, ["-v", "--spare-workers", "2"]) as server:
        ready = wait_for(lambda: len(spares(server)) == 2, "two spare workers")
        assert ready
        for n in range(6):
            # a spare says "ready" just after its association: wait for it, or the
            # next connection may find none idle and get a fresh fork (a third pid)
            wait_for(lambda: len(spares(server)) == 2, "both spares idle")
            assert query(server, f"P{n % 3}") == 1
        result = findscu(server.port, aec=AREA, keys=["PatientID"])  # DCMTK too
        assert result.final_status == 0x0000 and len(result.datasets) == 3
        wait_for(lambda: len(spares(server)) == 2, "both spares back")
        log = server.log()
    pids = served_by(log)
    assert len(pids) == 6, log
    assert len(set(pids)) <= 2, f"not reused: {pids}"  # at most the two spares served
    assert " ERROR " not in log and "Traceback" not in log, log


def test_a_new_file_is_seen_by_a_reused_spare(data_root: Path) -> None:
    with servers.wlmd(data_root, ["--spare-workers", "1"]) as server:
        wait_for(lambda: spares(server), "the spare worker")
        assert query(server, "NEW") == 0
        write_wl(data_root / AREA / "new.wl", complete_entry(PatientID="NEW"))
        wait_for(lambda: query(server, "NEW") == 1, "the new entry")


def test_an_event_that_changes_no_entry_leaves_the_spares_current(data_root: Path) -> None:
    """A stale spare retires after its association and is forked again: ~120 ms of the
    supervisor per fork at 1,000,000 entries. A temporary file (the lockfile
    protocol writes one before each rename) or any non-.wl file changes no entry."""
    with servers.wlmd(data_root, ["-d", "--spare-workers", "2"]) as server:
        wait_for(lambda: len(spares(server)) == 2, "two spare workers")
        assert query(server, "P1") == 1  # after the start-up refresh
        wait_for(lambda: len(spares(server)) == 2, "both spares idle")
        before = set(spares(server))
        refreshes = server.log().count("snapshot refreshed")
        (data_root / AREA / ".e9.wl.tmp").write_bytes(b"being written")
        os.rename(data_root / AREA / ".e9.wl.tmp", data_root / AREA / "notes.txt")
        wait_for(lambda: server.log().count("snapshot refreshed") > refreshes, "a refresh")
        for n in range(3):
            assert query(server, f"P{n}") == 1
            # a stale spare exits after its association and another is forked
            wait_for(lambda: len(spares(server)) == 2, "both spares idle")
        after = set(spares(server))
    assert after == before, "spares were replaced after an event that changed nothing"


def test_sigterm_stops_spares_and_the_supervisor(data_root: Path) -> None:
    with servers.wlmd(data_root, ["-v", "--spare-workers", "2"]) as server:
        wait_for(lambda: len(spares(server)) == 2, "two spare workers")
        assert query(server, "P1") == 1
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(WAIT)
        assert time.monotonic() - started < servers.STOP_TIMEOUT
        assert server.proc.returncode == 0
        log = server.log()
    assert "killing worker" not in log and " ERROR " not in log, log
    assert "stopped" in log


def test_two_spares_by_default_and_none_with_zero(data_root: Path) -> None:
    with servers.wlmd(data_root, ["-v"]) as server:
        wait_for(lambda: len(spares(server)) == 4, "the four default spare workers")
        warm = set(spares(server))
        assert query(server, "P1") == 1
        (pid,) = wait_for(lambda: served_by(server.log()), "the association line")  # type: ignore[misc]
    assert int(pid) in warm, f"served by {pid}, not by a spare ({warm})"
    with servers.wlmd(data_root, ["-v", "--spare-workers", "0"]) as server:
        assert spares(server) == []
        assert query(server, "P1") == 1
        (pid,) = wait_for(lambda: served_by(server.log()), "the association line")  # type: ignore[misc]
        wait_for(lambda: int(pid) not in children(server.proc.pid), "its worker to exit")
        assert spares(server) == []


def test_single_process_mode_has_no_spares(data_root: Path) -> None:
    with servers.wlmd(data_root, ["-s", "--spare-workers", "2"]) as server:
        assert query(server, "P2") == 1
        assert children(server.proc.pid) == {}


def test_a_burst_beyond_the_spares_is_served_and_the_supervisor_lives(data_root: Path) -> None:
    """Found by bench/run.py: concurrent associations killed the supervisor when a spare
    ended (MAX_ASSOCIATIONS served) in the same round as an accept (its channel, closed
    by reap(), was then read as a pending rejection)."""
    import threading

    results: list[object] = []

    def client(n: int) -> None:
        for k in range(80):  # the spares reach MAX_ASSOCIATIONS and are replaced meanwhile
            try:
                results.append(query(server, f"P{(n + k) % 3}"))
            except Exception as exc:
                results.append(exc)

    with servers.wlmd(data_root, ["--spare-workers", "2", "--max-associations", "60"]) as server:
        wait_for(lambda: len(spares(server)) == 2, "two spare workers")
        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT * 6)
        assert server.alive(), server.log()
        assert query(server, "P1") == 1
        log = server.log()
    assert results.count(1) == len(results) == 480, [r for r in results if r != 1][:5]
    assert "Traceback" not in log, log
