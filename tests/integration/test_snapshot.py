"""Never stale, never torn: wlmd's indexed snapshot against a writer that keeps changing files.

The writer follows the wlmscpfs protocol: it takes the write lock (fcntl) on
the storage area's ``lockfile`` and moves the area from one *generation* to
the next: it deletes some files, rewrites others in place and adds new ones;
every file of generation g carries PatientID ``G<g>-K<k>``. A query's answer
must therefore be exactly the set of one generation (not torn), and at least
the generation committed before the query was sent (not stale), also for
queries late in a long-lived association and with ``--no-index``.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.servers import Server
from tests.helpers.worklists import complete_entry, make_area, query, write_wl

AREA = "WLMD"
FILES = 12
TIMEOUT = 10
#: Bounds of the concurrent run.
DURATION = 6.0
MAX_COMMITS = 400
CLIENTS = 3


def members(generation: int) -> list[int]:
    """Which files generation ``generation`` has: a third of them changes every time."""
    return [k for k in range(FILES) if (k + generation) % 3 != 0]


def expected(generation: int) -> frozenset[str]:
    return frozenset(f"G{generation}-K{k}" for k in members(generation))


class Writer:
    """Moves the area from generation to generation under the write lock."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.committed = 0
        self._encoded: dict[tuple[int, int], bytes] = {}

    def _content(self, generation: int, k: int, scratch: Path) -> bytes:
        key = (generation, k)
        if key not in self._encoded:
            write_wl(scratch, complete_entry(PatientID=f"G{generation}-K{k}"))
            self._encoded[key] = scratch.read_bytes()
        return self._encoded[key]

    def commit(self, generation: int) -> None:
        scratch = self.directory.parent / f"scratch-{threading.get_ident()}.dcm"
        contents = {k: self._content(generation, k, scratch) for k in members(generation)}
        fd = os.open(self.directory / "lockfile", os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
            for k in range(FILES):
                path = self.directory / f"s{k:02d}.wl"
                if k not in contents:
                    path.unlink(missing_ok=True)
                elif k % 2:
                    path.write_bytes(contents[k])  # rewritten in place (or created)
                else:
                    temporary = self.directory / f"s{k:02d}.tmp"
                    temporary.write_bytes(contents[k])
                    os.rename(temporary, path)  # replaced by rename
            fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        self.committed = generation


@pytest.fixture(params=["index", "no-index"])
def server_and_writer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Server, Writer]]:
    root = tmp_path / "worklists"
    make_area(root, AREA, {})
    writer = Writer(root / AREA)
    writer.commit(0)
    options = ["--no-index"] if request.param == "no-index" else []
    with servers.wlmd(root, options) as server:
        yield server, writer


def _pynetdicom_find(assoc, generation_hint: str) -> frozenset[str]:  # type: ignore[no-untyped-def]
    found = set()
    q = query(PatientID=None, sps={"Modality": None})
    for n, (status, identifier) in enumerate(assoc.send_c_find(q, ModalityWorklistInformationFind)):
        assert n <= FILES, "more responses than files"
        assert status, f"no response ({generation_hint}): timed out or association lost"
        if status.Status in (0xFF00, 0xFF01):
            found.add(str(identifier.PatientID))
        else:
            assert status.Status == 0x0000, hex(status.Status)
    return frozenset(found)


def test_long_association_sees_every_commit(server_and_writer: tuple[Server, Writer]) -> None:
    server, writer = server_and_writer
    ae = AE(ae_title="SNAPSHOT")
    for name in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
        setattr(ae, name, TIMEOUT)
    ae.add_requested_context(ModalityWorklistInformationFind)
    assoc = ae.associate("127.0.0.1", server.port, ae_title=AREA)
    assert assoc.is_established
    try:
        assert _pynetdicom_find(assoc, "generation 0") == expected(0)
        for generation in range(1, 7):
            writer.commit(generation)  # the worker was forked long before this
            assert _pynetdicom_find(assoc, f"generation {generation}") == expected(generation)
    finally:
        assoc.release()


def test_concurrent_queries_never_see_a_torn_or_stale_set(
    server_and_writer: tuple[Server, Writer],
) -> None:
    server, writer = server_and_writer
    stop = threading.Event()
    problems: list[str] = []
    answered: list[int] = []

    def write() -> None:
        generation = 0
        deadline = time.monotonic() + DURATION
        while not stop.is_set() and time.monotonic() < deadline and generation < MAX_COMMITS:
            generation += 1
            writer.commit(generation)

    def ask() -> None:
        deadline = time.monotonic() + DURATION
        for _ in range(200):
            if stop.is_set() or time.monotonic() >= deadline:
                return
            before = writer.committed
            result = findscu(server.port, aec=AREA, keys=["PatientID"], timeout=TIMEOUT)
            after = writer.committed
            if result.final_status != 0x0000:
                problems.append(f"status {result.final_status}: {result.describe()}")
                return
            got = frozenset(str(ds.PatientID) for ds in result.datasets)
            generations = {int(pid.split("-")[0][1:]) for pid in got}
            if len(generations) != 1 or got != expected(next(iter(generations))):
                problems.append(f"torn answer: {sorted(got)}")
                return
            (generation,) = generations
            # A commit whose lock was released but whose counter was not yet updated
            # may be seen: hence after + 1.
            if not before <= generation <= after + 1:
                problems.append(f"stale answer: generation {generation}, committed {before}")
                return
            answered.append(generation)

    threads = [threading.Thread(target=write)] + [
        threading.Thread(target=ask) for _ in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DURATION + 4 * TIMEOUT)
    stop.set()
    assert not any(t.is_alive() for t in threads), "a client or the writer hung"
    assert not problems, problems
    assert len(answered) >= 10, f"only {len(answered)} queries answered"
    assert writer.committed >= 10, "the writer hardly ran"
    assert len(set(answered)) > 1, "every query saw the same generation: nothing was tested"
