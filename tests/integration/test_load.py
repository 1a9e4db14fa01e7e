"""Load: associations over the limit, many associations in a row, a flood of bad files.

Bounded in count and time. The counts here are CI's; ``WLMD_LOAD_SCALE=10`` runs
ten times as many (10,000 sequential associations), as recorded in the README.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.rawclient import Association, DicomError, Rejected, identifier
from tests.helpers.worklists import complete_entry, make_area, write_wl

AREA = "WLMD"
SCALE = int(os.environ.get("WLMD_LOAD_SCALE", "1"))
TIMEOUT = 10.0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(p) for p in handle.read().split()]
    return found


def _wait(condition, what: str, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("load")
    make_area(root, AREA, {f"e{n}.wl": complete_entry(PatientID=f"P{n}") for n in range(20)})
    return root


def test_connections_over_the_limit_all_get_a_clean_rejection(data_root: Path) -> None:
    attempts = 500 * SCALE
    with servers.wlmd(data_root, ["--max-associations", "2", "-ta", "60"]) as server:
        pid = server.proc.pid
        held: list[Association] = []
        deadline = time.monotonic() + 30
        while len(held) < 2 and time.monotonic() < deadline:
            try:  # the readiness probe's worker may still count against the limit
                held.append(Association.open("127.0.0.1", server.port, AREA, io_timeout=TIMEOUT))
            except Rejected:
                time.sleep(0.05)
        try:
            assert len(held) == 2, "could not establish the two associations to hold"
            _wait(lambda: len(_children(pid)) == 2, "two held workers")
            outcomes: dict[str, int] = {}
            lock = threading.Lock()

            def attempt(count: int) -> None:
                for _ in range(count):
                    try:
                        Association.open("127.0.0.1", server.port, AREA, io_timeout=TIMEOUT).close()
                        outcome = "accepted"
                    except Rejected as exc:
                        # PS3.8 Table 9-21: rejected-transient (2), service-provider ACSE
                        # (2), local-limit-exceeded (2)
                        outcome = (
                            "rejected"
                            if "result 2, source 3, reason 2" in str(exc)
                            else f"rejected otherwise: {exc}"
                        )
                    except DicomError as exc:
                        outcome = f"error: {exc}"
                    with lock:
                        outcomes[outcome] = outcomes.get(outcome, 0) + 1

            threads = [threading.Thread(target=attempt, args=(attempts // 4,)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(120)
            assert not any(t.is_alive() for t in threads), "a client hung"
            assert outcomes == {"rejected": attempts}, outcomes
            assert len(_children(pid)) == 2  # no worker was forked for them
        finally:
            for assoc in held:
                assoc.close()
        _wait(lambda: not _children(pid), "the held workers to end")
        result = findscu(server.port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000 and len(result.datasets) == 20


def test_many_sequential_associations_leak_nothing_in_the_supervisor(data_root: Path) -> None:
    count = 1000 * SCALE
    query = identifier({"PatientID": "P7"})
    with servers.wlmd(data_root, ["-ta", "2"]) as server:
        pid = server.proc.pid
        _wait(lambda: not _children(pid), "the readiness probe's worker to end")

        def cycle(n: int) -> None:
            for _ in range(n):
                with Association.open("127.0.0.1", server.port, AREA, io_timeout=TIMEOUT) as a:
                    result = a.find(query, deadline_s=TIMEOUT)
                    assert (result.status, result.matches) == (0x0000, 1)
                    a.release()

        cycle(100)  # warm-up: allocator arenas, caches
        _wait(lambda: not _children(pid), "workers to end")
        fds, rss = _fds(pid), _rss_kb(pid)
        started = time.monotonic()
        cycle(count)
        elapsed = time.monotonic() - started
        _wait(lambda: not _children(pid), "workers to end")
        assert _fds(pid) == fds, "the supervisor leaks file descriptors"
        grown = _rss_kb(pid) - rss
        assert grown < 2048, f"supervisor RSS grew by {grown} kB over {count} associations"
        print(f"{count} associations in {elapsed:.1f} s, supervisor RSS {grown:+d} kB")


def test_flood_of_bad_files_is_logged_once_and_good_ones_served(tmp_path: Path) -> None:
    root = tmp_path / "root"
    area = make_area(
        root, AREA, {f"good{n}.wl": complete_entry(PatientID=f"G{n}") for n in range(3)}
    )
    (area / "empty.wl").write_bytes(b"")
    (area / "text.wl").write_text("PatientName=DOE^JOHN\n")
    good = (area / "good0.wl").read_bytes()
    (area / "truncated.wl").write_bytes(good[: len(good) // 2])
    (area / "garbage.wl").write_bytes(os.urandom(4096))
    (area / "preamble-only.wl").write_bytes(bytes(128) + b"DICM")
    with open(area / "huge.wl", "wb") as huge:  # sparse: 65 MiB without using the disk
        huge.truncate(65 * 1024 * 1024)
    os.mkfifo(area / "fifo.wl")
    (area / "dir.wl").mkdir()
    outside = tmp_path / "outside.dcm"
    write_wl(outside, complete_entry(PatientID="OUTSIDE"))
    os.symlink(outside, area / "escape.wl")
    os.symlink(area / "nothing-there", area / "dangling.wl")
    for n in range(200):
        (area / f"bad{n:03d}.wl").write_bytes(b"\x08\x00" + os.urandom(30))
    bad = 9 + 200
    with servers.wlmd(root) as server:
        for _ in range(10):
            result = findscu(server.port, aec=AREA, keys=["PatientID"])
            assert result.final_status == 0x0000, result.describe()
            assert sorted(ds.PatientID for ds in result.datasets) == ["G0", "G1", "G2"]
        log = server.log()
    skipped = [line for line in log.splitlines() if "skipped" in line]
    named = {line.split("worklist file ")[1].split(" skipped")[0] for line in skipped}
    assert len(skipped) == len(named) == bad, "\n".join(skipped[:20])
    assert str(area / "escape.wl") in named and "outside the storage area" in log
    assert str(area / "dangling.wl") not in named  # a dangling link is no news
    with contextlib.suppress(FileNotFoundError):
        os.unlink(area / "fifo.wl")
