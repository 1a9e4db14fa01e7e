"""wlmd against DCMTK's wlmscpfs on synthetic worklist databases of N entries, side by side.

    python bench/run.py                                  # N = 1,000 / 10,000 / 100,000
    python bench/run.py --sizes 1000,10000 --json out.json
    python bench/run.py --quick                          # N = 200, seconds (CI smoke)
    python bench/run.py --scale                          # N = 1,000,000, ~40 min
    python bench/run.py --variants wlmd,wlmd:--no-index,wlmscpfs

For each N, a database of N complete worklist files is generated (bench/mwlgen.py:
seeded, cached in the work directory), then each server variant in turn is started
on it and measured, one at a time, with nothing else of the benchmark running:

* start-up: spawn until ready (wlmd: READY=1 on $NOTIFY_SOCKET; wlmscpfs: the port
  accepts a connection), and spawn until the first query has been answered;
* query latency of five selective queries (PatientID; AccessionNumber; station AE +
  today; Modality + a date range; PatientName wildcard), values drawn from the data:
  C-FIND-RQ sent until the final C-FIND-RSP, each sample on a fresh association
  (as modalities query), association set-up timed separately;
* match-all (every entry returned), same way;
* throughput: K client processes, each opening an association, running one selective
  query and releasing, over and over for a fixed duration; queries/s and failures;
* memory: VmRSS/VmHWM and Pss/Private (smaps_rollup) of the supervisor at ready,
  after the first query and at the end, and of a worker holding an association;
* visibility: a new file (and a changed file) written by the lockfile protocol,
  until a PatientID query returns it.

The client is bench/mwlclient.py (raw upper layer, implicit VR little endian).
wlmscpfs binds every interface, so it runs in its own network namespace with
TCP_NODELAY=1 (as bench/assoc.py and tests/helpers/servers.py do); the benchmark
joins that namespace with setns(2) for its clients. wlmd listens on 127.0.0.1.
Output: a table per N on stdout (ratios wlmd/wlmscpfs: for times < 1 means wlmd is
faster, for queries/s > 1), progress on stderr, and all raw numbers plus machine
information as JSON (--json, default bench/out/run-<time>.json).

Exit status: 0 all measured without failures; 3 measured, but with failures,
timeouts or phase errors (see the JSON); 1 a server could not be started / an
option was refused; 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import dataclasses
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"

try:
    import pydicom  # noqa: F401 - mwlgen needs its data dictionary
except ImportError:  # pragma: no cover - system python without pydicom: use the venv's
    if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), *sys.argv])
    sys.exit("bench/run.py needs pydicom: run scripts/bootstrap first")

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import assoc as echo_bench  # noqa: E402  (bench/assoc.py's raw C-ECHO client)
import mwlgen  # noqa: E402
from mwlclient import (  # noqa: E402
    Association,
    DicomError,
    Rejected,
    Timeout,
    associate_rq,
    identifier,
    patient_ids,
)

AREA = mwlgen.AREA
CALLING = "BENCH"
CLONE_NEWNET = 0x40000000
KINDS = ("patient_id", "accession", "station_today", "modality_range", "name_wildcard")
STOP_TIMEOUT = 10.0
SETTLE_TIMEOUT = 60.0
#: Persistent across reboots, so the generated databases stay cached.
DEFAULT_WORKDIR = Path(
    "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir(), f"wlmd-bench-{os.getuid()}"
)

_T0 = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on (server did not start, option refused, …)."""


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Variant:
    """A server to measure: ``wlmd``/``wlmscpfs`` plus options; ``label`` names it."""

    label: str
    kind: str
    options: tuple[str, ...]


def parse_variants(text: str, wlmd_options: list[str]) -> list[Variant]:
    variants = []
    for spec in filter(None, (s.strip() for s in text.split(","))):
        kind, _, opts = spec.partition(":")
        if kind not in ("wlmd", "wlmscpfs"):
            raise ValueError(f"unknown server {kind!r} in {spec!r} (wlmd or wlmscpfs)")
        options = tuple(shlex.split(opts))
        if kind == "wlmd":
            options = (*wlmd_options, *options)
        label = spec if not wlmd_options or kind != "wlmd" else f"{spec}+{' '.join(wlmd_options)}"
        variants.append(Variant(label, kind, options))
    labels = [v.label for v in variants]
    if len(set(labels)) != len(labels):
        raise ValueError(f"variants named twice: {labels}")
    return variants


#: samples discarded before each poll-cycle / open-association / C-ECHO series
WARM_UP = 5
#: at least this many poll cycles (and twice as many C-ECHO associations) per server
POLL_CYCLES = 100


#: wlmscpfs phases ``--wlmscpfs-skip`` can leave out (the per-query-file-read cost
#: makes them hours at 1,000,000): poll cycles + C-FINDs on an open association,
#: the throughput runs, and visibility (for wlmscpfs one query's time, nothing more)
SKIPPABLE = ("poll", "throughput", "visibility")


@dataclass(frozen=True)
class ReferenceCaps:
    """Sample caps and skipped phases for wlmscpfs (None: as for wlmd)."""

    repeat: int | None = None
    repeat_all: int | None = None
    visibility_repeat: int | None = None
    skip: frozenset[str] = frozenset()


@dataclass
class Settings:
    sizes: list[int]
    variants: list[Variant]
    repeat: int
    repeat_all: int
    duration: float
    concurrency: list[int]
    visibility_repeat: int
    visibility_timeout: float
    io_timeout: float
    series_budget: float
    start_timeout: float
    seed: int
    max_pdu: int
    reuse_association: bool
    allow_all_interfaces: bool
    workdir: Path
    run_dir: Path
    #: poll cycles, C-FINDs on an open association (and twice as many C-ECHOs)
    poll_cycles: int = POLL_CYCLES
    #: per-server caps (wlmscpfs reads every file per query: ~30 s each at 1,000,000)
    reference: ReferenceCaps = ReferenceCaps()

    def for_server(self, variant: Variant) -> Settings:
        """These settings with wlmscpfs's caps applied when ``variant`` is wlmscpfs."""
        if variant.kind != "wlmscpfs":
            return self
        caps = self.reference

        def cap(value: int, limit: int | None) -> int:
            return value if limit is None else max(1, min(value, limit))

        return dataclasses.replace(
            self,
            repeat=cap(self.repeat, caps.repeat),
            repeat_all=cap(self.repeat_all, caps.repeat_all),
            visibility_repeat=cap(self.visibility_repeat, caps.visibility_repeat),
        )


# --------------------------------------------------------------------------- processes


def memory(pid: int) -> dict[str, float] | None:
    """VmRSS/VmHWM (/proc/PID/status) and Pss/Private (smaps_rollup) in MB, or None."""
    out: dict[str, float] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key.lower().replace("vm", "") + "_mb"] = int(value.split()[0]) / 1024
        with open(f"/proc/{pid}/smaps_rollup") as f:
            private = 0
            for line in f:
                key, _, value = line.partition(":")
                if key == "Pss":
                    out["pss_mb"] = int(value.split()[0]) / 1024
                elif key in ("Private_Clean", "Private_Dirty"):
                    private += int(value.split()[0])
            out["private_mb"] = private / 1024
    except (OSError, ValueError, IndexError):
        return None
    return {k: round(v, 2) for k, v in out.items()}


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def children(pid: int, zombies: bool = False) -> list[int]:
    """Association processes of ``pid`` (/proc/PID/task/*/children); zombies only if asked.

    wlmd's spare workers (--spare-workers) wait for a connection, they serve none.
    """
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(p) for p in f.read().split()]
    found = [p for p in found if not _cmdline(p).startswith("wlmd: spare worker")]
    if zombies:
        return found
    return [child for child in found if _state(child) not in ("Z", "X", "")]


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def _ns_inode(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:
        return ""


_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(pid: int | None) -> Iterator[None]:
    """Run the block (and processes forked in it) in the network namespace of ``pid``."""
    if pid is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(own)


def netns_available() -> bool:
    """Whether ``unshare --net`` with a loopback works here (needs root)."""
    try:
        proc = subprocess.run(
            ["unshare", "--net", "ip", "link", "set", "lo", "up"],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def find_wlmscpfs() -> str:
    for candidate in (os.environ.get("DCMTK_BIN_DIR", ""), "/usr/bin", "/usr/local/bin"):
        path = os.path.join(candidate, "wlmscpfs") if candidate else ""
        if path and os.access(path, os.X_OK):
            return path
    path = shutil.which("wlmscpfs")
    if path is None:
        raise BenchError("DCMTK's wlmscpfs not found (apt-get install dcmtk, or DCMTK_BIN_DIR)")
    return path


def wlmd_python() -> str:
    return str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    variant: Variant
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str]
    spawned: float  # perf_counter at spawn
    ready_s: float = 0.0
    netns_pid: int | None = None
    notify: socket.socket | None = None
    notify_messages: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def died(self, when: str) -> BenchError:
        return BenchError(
            f"{self.variant.label} exited with status {self.proc.returncode} {when}\n"
            f"$ {shlex.join(self.argv)}\n--- {self.log_path} ---\n{self.log_tail()}"
        )


def start_server(
    variant: Variant,
    data_root: Path,
    log_path: Path,
    timeout: float,
    allow_all_interfaces: bool = False,
) -> Server:
    """Spawn ``variant`` on ``data_root`` and wait until it is ready (bounded by ``timeout``).

    wlmscpfs goes into its own network namespace; without namespaces (not root) it is
    only started when ``allow_all_interfaces`` says binding every interface is fine.
    """
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    notify = None
    netns = False
    if variant.kind == "wlmd":
        argv = [
            wlmd_python(),
            "-m",
            "wlmd",
            "--listen-address",
            "127.0.0.1",
            *variant.options,
            "-dfp",
            str(data_root),
            str(port),
        ]
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        notify_path = log_path.with_suffix(".notify")
        notify_path.unlink(missing_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        notify.bind(str(notify_path))
        env["NOTIFY_SOCKET"] = str(notify_path)
    else:
        binary = find_wlmscpfs()
        server_argv = [binary, *variant.options, "-dfp", str(data_root), str(port)]
        env["TCP_NODELAY"] = "1"
        netns = netns_available()
        if netns:
            argv = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "wlmscpfs"]
            argv += server_argv
        elif allow_all_interfaces:
            argv = server_argv
        else:
            raise BenchError(
                "network namespaces not available (needs root): wlmscpfs would bind every "
                "interface; rerun with --allow-all-interfaces to accept that"
            )
    with open(log_path, "ab") as log:
        spawned = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(log_path.parent),
            start_new_session=True,
        )
    server = Server(variant, proc, port, log_path, argv, spawned, notify=notify)
    try:
        if notify is not None:
            _wait_notify(server, timeout)
        else:
            _wait_port(server, timeout, netns)
    except BaseException:
        stop_server(server)
        raise
    if netns:
        server.netns_pid = proc.pid
    return server


def _wait_notify(server: Server, timeout: float) -> None:
    assert server.notify is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise server.died("before it was ready")
        server.notify.settimeout(0.05)
        try:
            message = server.notify.recv(4096).decode("utf-8", "replace")
        except TimeoutError:
            continue
        server.notify_messages.append(message)
        if "READY=1" in message.splitlines():
            server.ready_s = time.perf_counter() - server.spawned
            return
    raise BenchError(f"{server.variant.label}: no READY=1 within {timeout}s\n{server.log_tail()}")


def _wait_port(server: Server, timeout: float, netns: bool) -> None:
    deadline = time.monotonic() + timeout
    own = _ns_inode("/proc/thread-self/ns/net")
    while netns and _ns_inode(f"/proc/{server.pid}/ns/net") in ("", own):  # unshare not done
        if not server.alive():
            raise server.died("before it was ready")
        if time.monotonic() > deadline:
            raise BenchError(f"{server.variant.label}: network namespace never appeared")
        time.sleep(0.001)
    with in_netns(server.pid if netns else None):
        while time.monotonic() < deadline:
            if not server.alive():
                raise server.died("before it was ready")
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=1.0):
                    server.ready_s = time.perf_counter() - server.spawned
                    return
            except OSError:
                time.sleep(0.002)
    raise BenchError(
        f"{server.variant.label}: port not open within {timeout}s\n{server.log_tail()}"
    )


def stop_server(server: Server) -> dict[str, Any]:
    """SIGTERM the server, SIGKILL its process group after STOP_TIMEOUT; how it went."""
    started = time.monotonic()
    outcome: dict[str, Any] = {"killed": False}
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(server.pid, signal.SIGTERM)  # the supervisor stops its workers itself
    try:
        server.proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        outcome["killed"] = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGKILL)
        server.proc.wait(timeout=STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)  # forked workers that outlived the parent
    outcome["exit_status"] = server.proc.returncode
    outcome["stop_s"] = round(time.monotonic() - started, 3)
    if server.notify is not None:
        server.notify.close()
        with contextlib.suppress(OSError):
            os.unlink(server.notify.getsockname() or b"")
    return outcome


def settle(server: Server, timeout: float = SETTLE_TIMEOUT) -> float:
    """Wait until no association process of the server is running; seconds waited.

    Exited but unreaped workers (zombies) do not count: wlmscpfs reaps them only
    when the next association arrives.
    """
    started = time.monotonic()
    # One look decides: a second call could see a spare worker forked in between, not yet
    # titled "wlmd: spare worker" (it failed runs within a second, "60 s" notwithstanding).
    while running := children(server.pid):
        if time.monotonic() - started >= timeout:
            raise BenchError(
                f"{server.variant.label}: {len(running)} association processes still "
                f"running {timeout:.0f}s after their clients left"
            )
        time.sleep(0.01)
    # wlmscpfs counts unreaped workers against --max-associations until an association
    # arrives: one accepted association makes sure the next phase starts from zero
    with in_netns(server.netns_pid):
        for _ in range(200):
            try:
                Association.open("127.0.0.1", server.port, AREA, CALLING, io_timeout=10).release()
                break
            except Rejected:
                time.sleep(0.01)
    return round(time.monotonic() - started, 3)


# --------------------------------------------------------------------------- statistics


def summary(values: list[float]) -> dict[str, float | None]:
    """Median, p95 (inclusive quantiles), min, max of seconds, in ms."""
    if not values:
        return {"median_ms": None, "p95_ms": None, "min_ms": None, "max_ms": None}
    ms = sorted(v * 1000 for v in values)
    p95 = statistics.quantiles(ms, n=20, method="inclusive")[18] if len(ms) > 1 else ms[0]
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(p95, 3),
        "min_ms": round(ms[0], 3),
        "max_ms": round(ms[-1], 3),
    }


class Failures:
    """Failure counters of one series plus the first few messages."""

    def __init__(self) -> None:
        self.failures = 0
        self.timeouts = 0
        self.rejected = 0
        self.messages: list[str] = []

    def add(self, exc: Exception) -> None:
        if isinstance(exc, Rejected):
            self.rejected += 1
        elif isinstance(exc, Timeout):
            self.timeouts += 1
        self.failures += 1
        if len(self.messages) < 5:
            self.messages.append(f"{type(exc).__name__}: {exc}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "failures": self.failures,
            "timeouts": self.timeouts,
            "rejected": self.rejected,
            "messages": self.messages,
        }


# --------------------------------------------------------------------------- measurements


class Measure:
    """All measurements of one server on one database."""

    def __init__(self, server: Server, db: mwlgen.Database, settings: Settings) -> None:
        self.server = server
        self.db = db
        self.s = settings
        self.rq = associate_rq(AREA, CALLING, settings.max_pdu)
        self.setups: list[float] = []

    def open(self) -> Association:
        assoc = Association.open(
            "127.0.0.1",
            self.server.port,
            AREA,
            CALLING,
            io_timeout=self.s.io_timeout,
            max_pdu=self.s.max_pdu,
            rq=self.rq,
        )
        self.setups.append(assoc.setup)
        return assoc

    def one_query(self, keys: dict[str, str], keep: bool = False) -> Any:
        with self.open() as assoc:
            result = assoc.find(identifier(keys), keep=keep, deadline_s=self.s.io_timeout * 10)
            assoc.release()
        return result

    # -- start-up

    def first_query(self) -> dict[str, Any]:
        keys = self.db.queries["patient_id"][0]
        result = self.one_query(keys)
        total = time.perf_counter() - self.server.spawned
        return {
            "ready_ms": round(self.server.ready_s * 1000, 1),
            "first_query_ms": round(total * 1000, 1),
            "first_query_latency_ms": round(result.latency * 1000, 3),
            "first_query_matches": result.matches,
        }

    # -- latency

    def series(self, kind: str, pool: list[dict[str, str]], count: int) -> dict[str, Any]:
        """``count`` samples of one query kind (bounded by the series time budget)."""
        latencies: list[float] = []
        answers: list[dict[str, Any]] = []
        fails = Failures()
        deadline = time.monotonic() + self.s.series_budget
        keep = kind != "match_all"
        shared: Association | None = None
        consecutive = 0
        for j in range(count):
            if j and time.monotonic() > deadline:
                break
            keys = pool[j % len(pool)]
            try:
                if self.s.reuse_association:
                    if shared is None:
                        shared = self.open()
                    result = shared.find(
                        identifier(keys), keep=keep, deadline_s=self.s.io_timeout * 10
                    )
                else:
                    result = self.one_query(keys, keep=keep)
            except (DicomError, OSError) as exc:
                fails.add(exc)
                consecutive += 1
                if shared is not None:
                    shared.close()
                    shared = None
                if consecutive >= 3:
                    break
                continue
            consecutive = 0
            if result.status != 0:
                fails.add(DicomError(f"final status 0x{result.status:04X} for {keys}"))
                continue
            latencies.append(result.latency)
            answer: dict[str, Any] = {"query": keys, "matches": result.matches}
            if keep:
                answer["patient_ids"] = patient_ids(result.datasets)
            if result.pending_statuses - {0xFF00}:
                answer["pending_statuses"] = sorted(result.pending_statuses)
            answers.append(answer)
        if shared is not None:
            with contextlib.suppress(DicomError, OSError):
                shared.release()
        return {
            **summary(latencies),
            "samples": len(latencies),
            **fails.as_dict(),
            "answers": answers,
        }

    def worker_memory(self) -> dict[str, Any]:
        """Memory of the process serving an open association that has run one query."""
        before = set(children(self.server.pid))
        with self.open() as assoc:
            pool = self.db.queries["patient_id"]
            assoc.find(identifier(pool[1 % len(pool)]), deadline_s=self.s.io_timeout * 10)
            deadline = time.monotonic() + 2
            new: list[int] = []
            while time.monotonic() < deadline:
                new = [p for p in children(self.server.pid) if p not in before]
                if new:
                    break
                time.sleep(0.01)
            result: dict[str, Any] = {"workers": len(new)}
            if new:
                result.update(memory(new[0]) or {})
            assoc.release()
        return result

    # -- a modality's poll, association cost

    def poll_cycles(self, count: int) -> dict[str, Any]:
        """Full poll cycles: connect, associate, PatientID C-FIND, release (one after another)."""
        pool = self.db.queries["patient_id"]
        cycles: list[float] = []
        fails = Failures()
        deadline = time.monotonic() + self.s.series_budget
        for j in range(count + WARM_UP):
            if j and time.monotonic() > deadline:
                break
            started = time.perf_counter()
            try:
                with self.open() as assoc:
                    keys = identifier(pool[j % len(pool)])
                    result = assoc.find(keys, deadline_s=self.s.io_timeout)
                    assoc.release()
            except (DicomError, OSError) as exc:
                fails.add(exc)
                continue
            if result.status != 0:
                fails.add(DicomError(f"final status 0x{result.status:04X}"))
            elif j >= WARM_UP:
                cycles.append(time.perf_counter() - started)
        return {**summary(cycles), "samples": len(cycles), **fails.as_dict()}

    def open_association_finds(self, count: int) -> dict[str, Any]:
        """PatientID C-FINDs one after another on one open association (request → final)."""
        pool = self.db.queries["patient_id"]
        latencies: list[float] = []
        fails = Failures()
        deadline = time.monotonic() + self.s.series_budget
        with self.open() as assoc:
            for j in range(count + WARM_UP):
                if j > WARM_UP and time.monotonic() > deadline:
                    break
                try:
                    keys = identifier(pool[j % len(pool)])
                    result = assoc.find(keys, deadline_s=self.s.io_timeout)
                except (DicomError, OSError) as exc:
                    fails.add(exc)
                    break
                if j >= WARM_UP:
                    latencies.append(result.latency)
            with contextlib.suppress(DicomError, OSError):
                assoc.release()
        return {**summary(latencies), "samples": len(latencies), **fails.as_dict()}

    def echo_associations(self, count: int) -> dict[str, Any]:
        """C-ECHO associations per second, one after another (bench/assoc.py's raw client)."""
        rq = echo_bench.associate_rq(AREA, CALLING)
        echo = echo_bench.echo_rq()
        for _ in range(WARM_UP):
            echo_bench.raw_echo(self.server.port, rq, echo)
        started = time.perf_counter()
        setups = []
        for _ in range(count):
            setups.append(echo_bench.raw_echo(self.server.port, rq, echo).setup)
        elapsed = time.perf_counter() - started
        return {
            "assoc_per_s": round(count / elapsed, 1),
            "setup": summary(setups),
            "samples": count,
        }

    # -- throughput

    def throughput(self, concurrency: int) -> dict[str, Any]:
        queries = [identifier(k) for kind in KINDS for k in self.db.queries[kind][:16]]
        grace = max(30.0, self.s.duration)
        ctx = mp.get_context("fork")
        results: Any = ctx.Queue()
        go = ctx.Event()
        start_at = ctx.Value("d", 0.0)
        procs = [
            ctx.Process(
                target=_throughput_client,
                args=(
                    n,
                    self.server.port,
                    self.rq,
                    queries,
                    go,
                    start_at,
                    self.s.duration,
                    self.s.io_timeout,
                    grace,
                    results,
                ),
                daemon=True,
            )
            for n in range(concurrency)
        ]
        for proc in procs:
            proc.start()
        start_at.value = time.monotonic() + 0.2
        go.set()
        collected = []
        deadline = time.monotonic() + self.s.duration + grace + 30
        while len(collected) < concurrency and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                collected.append(results.get(timeout=max(0.1, deadline - time.monotonic())))
        for proc in procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        completed = sum(r["completed"] for r in collected)
        cycles = [c for r in collected for c in r["cycles"]]
        messages = [m for r in collected for m in r["messages"]][:5]
        start = start_at.value
        last = max([r["last_end"] for r in collected] + [start + self.s.duration])
        out = {
            "concurrency": concurrency,
            "duration_s": self.s.duration,
            "wall_s": round(last - start, 3),
            "qps": round(completed / (last - start), 2),
            "completed": completed,
            "failures": sum(r["failures"] for r in collected),
            "timeouts": sum(r["timeouts"] for r in collected),
            "rejected": sum(r["rejected"] for r in collected),
            "overran": sum(r["overran"] for r in collected),
            "cut_off": sum(r["cut_off"] for r in collected),
            "clients_reporting": len(collected),
            "cycle": summary(cycles),
            "messages": messages,
        }
        if len(collected) < concurrency:
            out["failures"] += concurrency - len(collected)
            out["messages"].append(f"{concurrency - len(collected)} client processes hung")
        return out

    # -- visibility

    def visibility(self, changed: bool, repeats: int, tag: int) -> dict[str, Any]:
        """File written (lockfile protocol) until a PatientID query returns it."""
        area = self.db.area
        times: list[float] = []
        polls: list[int] = []
        fails = Failures()
        for r in range(repeats):
            if changed:
                index = (self.db.n // 2 + r) % self.db.n
                entry = mwlgen.make_entry(self.db.seed, index, self.db.base)
                name = entry.file_name
                original = (area / name).read_bytes()
                entry.patient_id = f"C{tag:02d}{r:03d}{index:07d}"
                (self.db.root / mwlgen.DIRTY).touch()
            else:
                index = self.db.n + tag * 1000 + r
                entry = mwlgen.make_entry(self.db.seed, index, self.db.base)
                entry.patient_id = f"V{tag:02d}{r:03d}{index:08d}"
                name = f"{mwlgen.VISIBILITY_PREFIX}{index}.wl"
                original = None
            ident = identifier({"PatientID": entry.patient_id})
            try:
                mwlgen.put_file(area, name, mwlgen.encode_entry(entry))
                written = time.perf_counter()
                count = 0
                seen = False
                while time.perf_counter() - written < self.s.visibility_timeout:
                    count += 1
                    try:
                        with self.open() as assoc:
                            result = assoc.find(ident, deadline_s=self.s.visibility_timeout)
                            assoc.release()
                    except (DicomError, OSError) as exc:
                        fails.add(exc)
                        if fails.failures >= 3:
                            break
                        continue
                    if result.matches:
                        times.append(time.perf_counter() - written)
                        polls.append(count)
                        seen = True
                        break
                if not seen and fails.failures < 3:
                    fails.add(Timeout(f"{name} not visible after {self.s.visibility_timeout}s"))
            finally:
                if original is None:
                    with mwlgen.write_locked(area):
                        (area / name).unlink(missing_ok=True)
                else:
                    mwlgen.put_file(area, name, original)
                    (self.db.root / mwlgen.DIRTY).unlink(missing_ok=True)
        return {**summary(times), "samples": len(times), "polls": polls, **fails.as_dict()}


def _throughput_client(
    n: int,
    port: int,
    rq: bytes,
    queries: list[bytes],
    go: Any,
    start_at: Any,
    duration: float,
    io_timeout: float,
    grace: float,
    results: Any,
) -> None:
    """One client process: associate, one query, release, over and over until the deadline.

    No cycle starts after the deadline; one still running then is allowed to finish
    (within ``grace`` seconds more, else it is abandoned: ``cut_off``) and counts, so
    throughput is completed cycles over the time until the last one ended — right
    even when one cycle takes about as long as the whole run.
    """
    out = {"completed": 0, "failures": 0, "timeouts": 0, "rejected": 0, "overran": 0}
    out["cut_off"] = 0
    cycles: list[float] = []
    last_end = 0.0
    messages: list[str] = []
    if go.wait(60):
        start = start_at.value
        time.sleep(max(0.0, start - time.monotonic()))
        deadline = start + duration
        k = n * 7
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            assoc = None
            try:
                assoc = Association.open(
                    "127.0.0.1", port, AREA, CALLING, io_timeout=io_timeout, rq=rq
                )
                query = queries[k % len(queries)]
                k += 1
                result = assoc.find(query, deadline_s=deadline + grace - time.monotonic())
                if result.status != 0:
                    raise DicomError(f"final status 0x{result.status:04X}")
                assoc.release()
                out["completed"] += 1
                cycles.append(time.perf_counter() - t0)
                last_end = time.monotonic()
                if last_end > deadline:
                    out["overran"] += 1
            except Rejected as exc:
                out["rejected"] += 1  # --max-associations: back off a little, try again
                if len(messages) < 3:
                    messages.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)
            except (DicomError, OSError) as exc:
                if time.monotonic() >= deadline + grace - 0.01:
                    out["cut_off"] += 1
                else:
                    out["failures"] += 1
                    if isinstance(exc, Timeout):
                        out["timeouts"] += 1
                    if len(messages) < 3:
                        messages.append(f"{type(exc).__name__}: {exc}")
            finally:
                if assoc is not None:
                    assoc.close()
    results.put({**out, "cycles": cycles, "last_end": last_end, "messages": messages})


def measure_server(server: Server, db: mwlgen.Database, s: Settings) -> dict[str, Any]:
    """Every measurement of one running server; a failing phase is recorded, not fatal."""
    s = s.for_server(server.variant)
    skip = s.reference.skip if server.variant.kind == "wlmscpfs" else frozenset()
    m = Measure(server, db, s)
    res: dict[str, Any] = {"variant": server.variant.label, "argv": server.argv}
    res["samples_asked"] = {
        "repeat": s.repeat,
        "repeat_all": s.repeat_all,
        "visibility_repeat": s.visibility_repeat,
        "skipped": sorted(skip),
    }
    errors: list[str] = []
    label = f"N={db.n} {server.variant.label}"

    def phase(name: str, work: Callable[[], Any]) -> Any:
        try:
            return work()
        except (BenchError, DicomError, OSError) as exc:
            errors.append(f"{name}: {type(exc).__name__}: {exc}")
            progress(f"{label}: {name} failed: {exc}")
            return None

    mem: dict[str, Any] = {"supervisor_at_ready": memory(server.pid)}
    with in_netns(server.netns_pid):
        res["startup"] = phase("start-up", m.first_query)
        mem["supervisor_after_first_query"] = memory(server.pid)
        progress(f"{label}: ready {server.ready_s * 1000:.0f} ms; latency series")
        queries = {}
        for kind in KINDS:
            queries[kind] = phase(kind, lambda k=kind: m.series(k, db.queries[k], s.repeat))
        res["queries"] = queries
        progress(f"{label}: match-all")
        res["match_all"] = phase("match-all", lambda: m.series("match_all", [{}], s.repeat_all))
        res["association_setup"] = {**summary(m.setups), "samples": len(m.setups)}
        what = "poll cycles, C-FIND on an open association, C-ECHO associations"
        progress(f"{label}: {'C-ECHO associations' if 'poll' in skip else what}")
        cycles = max(s.repeat, s.poll_cycles)
        if "poll" not in skip:
            res["poll_cycle"] = phase("poll cycle", lambda: m.poll_cycles(cycles))
            res["open_find"] = phase("open association", lambda: m.open_association_finds(cycles))
        res["echo"] = phase("C-ECHO associations", lambda: m.echo_associations(2 * cycles))
        mem["worker"] = phase("worker memory", m.worker_memory)
        throughput = {}
        for c in [] if "throughput" in skip else s.concurrency:
            phase(f"settle before throughput {c}", lambda: settle(server))
            progress(f"{label}: throughput, {c} concurrent associations, {s.duration:g}s")
            throughput[str(c)] = phase(f"throughput {c}", lambda c=c: m.throughput(c))
            mem[f"supervisor_after_throughput_{c}"] = memory(server.pid)
        res["throughput"] = throughput
        if throughput:
            res["settle_after_throughput_s"] = phase(
                "settle after throughput", lambda: settle(server)
            )
        if "visibility" not in skip:
            progress(f"{label}: visibility")
            res["visibility_new"] = phase(
                "visibility new", lambda: m.visibility(False, s.visibility_repeat, 1)
            )
            res["visibility_changed"] = phase(
                "visibility changed", lambda: m.visibility(True, s.visibility_repeat, 2)
            )
    mem["supervisor_end"] = memory(server.pid)
    res["memory"] = mem
    res["errors"] = errors
    return res


def scan_log(path: Path) -> dict[str, Any]:
    """Error and warning lines a server logged (its misbehaviour, if any)."""
    pattern = re.compile(r"(Traceback|\bERROR\b|\bCRITICAL\b|^E: |^F: |\bWARNING\b|^W: )")
    hits: list[str] = []
    counts = {"error": 0, "warning": 0}
    try:
        lines = path.read_text("utf-8", "replace").splitlines()
    except OSError:
        return {"error": 0, "warning": 0, "lines": []}
    for line in lines:
        match = pattern.search(line)
        if not match:
            continue
        warn = "WARNING" in match.group(0) or match.group(0).startswith("W: ")
        counts["warning" if warn else "error"] += 1
        if len(hits) < 10:
            hits.append(line[:300])
    return {**counts, "lines": hits}


def total_failures(res: dict[str, Any]) -> int:
    total = len(res.get("errors", []))
    for block in [
        *(res.get("queries") or {}).values(),
        res.get("match_all"),
        *(res.get("throughput") or {}).values(),
        res.get("visibility_new"),
        res.get("visibility_changed"),
        res.get("poll_cycle"),
        res.get("open_find"),
    ]:
        if isinstance(block, dict):
            total += int(block.get("failures", 0))
    return total


# --------------------------------------------------------------------------- report

ROWS: list[tuple[str, tuple[str, ...]]] = [
    # label, path in a server's result; throughput rows are added per concurrency level
    ("start-up: ready (ms)", ("startup", "ready_ms")),
    ("start-up: first query answered (ms)", ("startup", "first_query_ms")),
    ("association set-up median (ms)", ("association_setup", "median_ms")),
    ("association set-up p95 (ms)", ("association_setup", "p95_ms")),
    ("poll cycle median (ms)", ("poll_cycle", "median_ms")),
    ("poll cycle p95 (ms)", ("poll_cycle", "p95_ms")),
    ("C-FIND on an open association median (ms)", ("open_find", "median_ms")),
    ("C-ECHO associations per second", ("echo", "assoc_per_s")),
    *[
        row
        for kind in KINDS
        for row in (
            (f"{kind} median (ms)", ("queries", kind, "median_ms")),
            (f"{kind} p95 (ms)", ("queries", kind, "p95_ms")),
        )
    ],
    ("match-all median (ms)", ("match_all", "median_ms")),
    ("match-all p95 (ms)", ("match_all", "p95_ms")),
    ("supervisor RSS at end (MB)", ("memory", "supervisor_end", "rss_mb")),
    ("supervisor peak RSS, VmHWM (MB)", ("memory", "supervisor_end", "hwm_mb")),
    ("supervisor PSS at end (MB)", ("memory", "supervisor_end", "pss_mb")),
    ("worker RSS (MB)", ("memory", "worker", "rss_mb")),
    ("worker PSS (MB)", ("memory", "worker", "pss_mb")),
    ("worker private (MB)", ("memory", "worker", "private_mb")),
    ("new file visible, median (ms)", ("visibility_new", "median_ms")),
    ("changed file visible, median (ms)", ("visibility_changed", "median_ms")),
    ("failures, all phases (count)", ("failures_total",)),
]


def rows_for(concurrency: list[int]) -> list[tuple[str, tuple[str, ...]]]:
    """ROWS with one throughput row per concurrency level, before the memory rows."""
    rows = list(ROWS)
    at = next(i for i, (label, _) in enumerate(rows) if label.startswith("supervisor"))
    rows[at:at] = [
        (f"throughput {c} assoc (queries/s)", ("throughput", str(c), "qps")) for c in concurrency
    ] + [
        (f"throughput {c} assoc: rejected (count)", ("throughput", str(c), "rejected"))
        for c in concurrency
    ]
    return rows


def lookup(res: dict[str, Any] | None, path: tuple[str, ...]) -> float | None:
    value: Any = res
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, int | float) else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratios(results: dict[str, dict[str, Any]], rows: list[tuple[str, tuple[str, ...]]]) -> dict:
    base = results.get("wlmscpfs")
    out: dict[str, dict[str, float | None]] = {}
    if base is None:
        return out
    for label, res in results.items():
        if label == "wlmscpfs":
            continue
        values: dict[str, float | None] = {}
        for name, path in rows:
            if "count" in name or path[-1] in ("failures_total", "rejected"):
                continue  # no ratio of counts
            a, b = lookup(res, path), lookup(base, path)
            values[name] = round(a / b, 4) if a is not None and b else None
        out[f"{label}/wlmscpfs"] = values
    return out


def table(n: int, results: dict[str, dict[str, Any]], concurrency: list[int]) -> str:
    rows = rows_for(concurrency)
    labels = list(results)
    rat = ratios(results, rows)
    head = [f"N={n:,}", *labels, *rat.keys()]
    lines = [head]
    for name, path in rows:
        cells = [name, *(_fmt(lookup(results[v], path)) for v in labels)]
        cells += [_fmt(r.get(name)) for r in rat.values()]
        lines.append(cells)
    matches = ["matches per query (first sample)"]
    for v in labels:
        q = results[v].get("queries") or {}
        counts = [
            str((q.get(k) or {}).get("answers", [{}])[0].get("matches", "-"))
            if (q.get(k) or {}).get("answers")
            else "-"
            for k in KINDS
        ]
        matches.append("/".join(counts))
    lines.append(matches + [""] * len(rat))
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    text = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in lines
    ]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def targets(sizes: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, evaluated where this run measured them."""
    out: list[dict[str, Any]] = []

    def add(name: str, value: float | None, limit: float, higher_is_better: bool = False) -> None:
        if value is None:
            return
        met = value >= limit if higher_is_better else value <= limit
        out.append({"target": name, "value": round(value, 4), "limit": limit, "met": met})

    for n_text, block in sizes.items():
        n = int(n_text)
        results = block["servers"]
        base = results.get("wlmscpfs")
        for label, res in results.items():
            if label == "wlmscpfs":
                continue
            if n in (10, 100) and base is not None:
                for name, path, limit, higher in (
                    ("poll cycle median", ("poll_cycle", "median_ms"), 1.0, False),
                    ("association set-up median", ("association_setup", "median_ms"), 2.0, False),
                    ("C-ECHO associations/s", ("echo", "assoc_per_s"), 0.5, True),
                    ("C-FIND on an open association", ("open_find", "median_ms"), 1.0, False),
                ):
                    if name.startswith("C-FIND") and n != 10:
                        continue
                    a, b = lookup(res, path), lookup(base, path)
                    if a is not None and b:
                        sign = "≥" if higher else "≤"
                        what = f"N={n} {label} {name} / wlmscpfs {sign} {limit:g}"
                        add(what, a / b, limit, higher)
            if n == 10_000 and base is not None:
                for kind in KINDS:
                    a = lookup(res, ("queries", kind, "median_ms"))
                    b = lookup(base, ("queries", kind, "median_ms"))
                    if a is not None and b:
                        add(f"N=10k {label} {kind} median / wlmscpfs ≤ 1/20", a / b, 0.05)
                a = lookup(res, ("throughput", "50", "qps"))
                b = lookup(base, ("throughput", "50", "qps"))
                if a is not None and b:
                    add(f"N=10k {label} 50-assoc throughput / wlmscpfs ≥ 10", a / b, 10, True)
                a = lookup(res, ("match_all", "median_ms"))
                b = lookup(base, ("match_all", "median_ms"))
                if a is not None and b:
                    add(f"N=10k {label} match-all median / wlmscpfs ≤ 1", a / b, 1.0)
            if n == 100_000:
                for kind in KINDS:
                    add(
                        f"N=100k {label} {kind} median ≤ 50 ms",
                        lookup(res, ("queries", kind, "median_ms")),
                        50,
                    )
                add(
                    f"N=100k {label} changed file visible ≤ 50 ms",
                    lookup(res, ("visibility_changed", "median_ms")),
                    50,
                )
                add(
                    f"N=100k {label} supervisor RSS ≤ 400 MB",
                    lookup(res, ("memory", "supervisor_end", "hwm_mb")),
                    400,
                )
    return out


def source_revision() -> tuple[str, bool | None]:
    """The git commit of the tree being measured, and whether wlmd/ differs from it.

    A release tarball or a ``git archive`` export has no ``.git`` (or the machine
    has no git): the revision is then "unknown (wlmd X.Y.Z, not a git checkout)",
    the version from wlmd/__init__.py, and whether the tree is modified is unknown
    (None). An export unpacked inside some other repository must not report that
    repository's commit, so the work tree's top level has to be REPO_ROOT itself.
    """

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                ["git", "-C", str(REPO_ROOT), *args],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    commit = git("rev-parse", "--verify", "HEAD") if top else None
    if not top or Path(top).resolve() != REPO_ROOT.resolve() or not commit:
        return f"unknown (wlmd {source_version()}, not a git checkout)", None
    status = git("status", "--porcelain", "--", "wlmd")
    return commit, None if status is None else bool(status)


def source_version() -> str:
    """``__version__`` of the wlmd being measured, read from its source (not imported)."""
    with contextlib.suppress(OSError):
        text = (REPO_ROOT / "wlmd" / "__init__.py").read_text("utf-8")
        if match := re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE):
            return match.group(1)
    return "?"


def machine_info() -> dict[str, Any]:
    def run(argv: list[str]) -> str:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return (proc.stdout + proc.stderr).strip()

    cpu = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    dcmtk = ""
    with contextlib.suppress(BenchError):
        dcmtk = next(
            (ln for ln in run([find_wlmscpfs(), "--version"]).splitlines() if "dcmtk" in ln), ""
        )
    versions = run(
        [
            wlmd_python(),
            "-c",
            "import platform, pydicom, pynetdicom; "
            "print(platform.python_version(), pydicom.__version__, pynetdicom.__version__)",
        ]
    ).split()
    commit, dirty = source_revision()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": cpu,
        "kernel": platform.release(),
        "os": run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python_bench": platform.python_version(),
        "python_wlmd": versions[0] if versions else None,
        "pydicom": versions[1] if len(versions) > 1 else None,
        "pynetdicom": versions[2] if len(versions) > 2 else None,
        "dcmtk": dcmtk,
        "wlmd_commit": commit,
        "wlmd_tree_dirty": dirty,
        "loadavg_start": os.getloadavg(),
    }


# --------------------------------------------------------------------------- main


def preflight(variants: list[Variant], run_dir: Path) -> None:
    """Start every wlmd variant once on an empty area: refused options fail here, early."""
    root = run_dir / "preflight"
    (root / AREA).mkdir(parents=True, exist_ok=True)
    (root / AREA / "lockfile").touch()
    for variant in variants:
        if variant.kind != "wlmd":
            find_wlmscpfs()
            continue
        server = start_server(variant, root, run_dir / "preflight.log", timeout=60)
        stop_server(server)


QUICK = {
    "sizes": "200",
    "repeat": 3,
    "repeat_all": 2,
    "duration": 1.5,
    "visibility_repeat": 1,
    "series_budget": 15.0,
}
#: One run at 1,000,000 entries in ~40 minutes of machine time (issue 16 item 4):
#: wlmscpfs reads and matches every file for every query (~30 s each there), so it
#: gets 2 samples per selective kind, 1 match-all and no poll/open-association,
#: throughput or visibility series (hours; its visibility is one query's time, and a
#: query there took 3-4 min on the loaded machine of 2026-12-02); wlmd's
#: first start is a full parse (~0.5 ms a file: ~8-14 min), hence the timeouts.
SCALE = {
    "sizes": "1000000",
    "repeat": 10,
    "repeat_all": 2,
    "visibility_repeat": 3,
    "visibility_timeout": 150.0,
    "io_timeout": 300.0,
    "series_budget": 300.0,
    "start_timeout": 1800.0,
    "wlmscpfs_repeat": 2,
    "wlmscpfs_repeat_all": 1,
    "wlmscpfs_visibility_repeat": 1,
    "wlmscpfs_skip": ",".join(SKIPPABLE),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py",
        description=__doc__.split("\n\n")[0],
        epilog="Variants: 'wlmd', 'wlmscpfs', or 'wlmd:OPTIONS' (shell words), "
        "e.g. --variants 'wlmd,wlmd:--no-index,wlmscpfs'.",
    )
    add = parser.add_argument
    add("--sizes", default="1000,10000,100000", help="comma-separated N (default: %(default)s)")
    add("--servers", default="wlmd,wlmscpfs", help="comma-separated (default: %(default)s)")
    add("--variants", help="servers with options, overrides --servers (see below)")
    add("--wlmd-option", action="append", default=[], metavar="OPT",
        help="extra wlmd option, repeatable (--wlmd-option=--no-index)")  # fmt: skip
    add("--repeat", type=int, default=20, help="samples per selective query kind")
    add("--repeat-all", type=int, default=5, help="samples of the match-all query")
    add("--poll-cycles", type=int, default=POLL_CYCLES,
        help="poll cycles and open-association C-FINDs (default: %(default)s)")  # fmt: skip
    add("--duration", type=float, default=10.0, help="seconds per throughput run")
    add("--concurrency", default="8,50", help="concurrent associations (default: %(default)s)")
    add("--visibility-repeat", type=int, default=3)
    add("--visibility-timeout", type=float, default=30.0)
    add("--io-timeout", type=float, default=60.0, help="seconds per socket operation")
    add("--series-budget", type=float, default=120.0,
        help="seconds per latency series (stops early, at least one sample)")  # fmt: skip
    add("--start-timeout", type=float, default=600.0, help="seconds until a server is ready")
    add("--seed", type=int, default=1)
    add("--max-pdu", type=int, default=16384)
    add("--reuse-association", action="store_true",
        help="run each latency series on one association instead of one per query")  # fmt: skip
    add("--allow-all-interfaces", action="store_true",
        help="without network namespaces (not root), wlmscpfs binds every interface")  # fmt: skip
    add("--json", type=Path, help="write the results here (default: bench/out/run-<time>.json)")
    add("--workdir", type=Path, default=DEFAULT_WORKDIR,
        help="databases (cached) and logs (default: %(default)s)")  # fmt: skip
    add("--keep", action="store_true", help="keep this run's logs even when all went well")
    add("--wlmscpfs-repeat", type=int, metavar="N", help="cap on wlmscpfs's --repeat")
    add("--wlmscpfs-repeat-all", type=int, metavar="N", help="cap on wlmscpfs's --repeat-all")
    add("--wlmscpfs-visibility-repeat", type=int, metavar="N",
        help="cap on wlmscpfs's --visibility-repeat")  # fmt: skip
    add("--wlmscpfs-skip", default="", metavar="PHASES",
        help=f"wlmscpfs phases left out, comma-separated: {', '.join(SKIPPABLE)}")  # fmt: skip
    add("--quick", action="store_true", help="N=200, few samples, short runs (CI smoke)")
    add("--scale", action="store_true",
        help="N=1,000,000 in ~40 min: wlmscpfs capped (2 samples a kind, 1 match-all, "
        "no poll/throughput/visibility series), long timeouts; other options override")  # fmt: skip
    pre, _ = parser.parse_known_args(argv)
    if pre.quick:
        parser.set_defaults(**QUICK)
    if pre.scale:
        parser.set_defaults(**SCALE)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
        concurrency = [int(x) for x in args.concurrency.split(",") if x.strip()]
        variants = parse_variants(args.variants or args.servers, args.wlmd_option)
        skip = frozenset(filter(None, (x.strip() for x in args.wlmscpfs_skip.split(","))))
        if skip - set(SKIPPABLE):
            raise ValueError(f"--wlmscpfs-skip: unknown phases {sorted(skip - set(SKIPPABLE))}")
    except ValueError as exc:
        print(f"bench/run.py: {exc}", file=sys.stderr)
        return 2
    if not sizes or min(sizes) < 1 or not concurrency or min(concurrency) < 1 or not variants:
        print("bench/run.py: sizes, concurrency and servers must be non-empty", file=sys.stderr)
        return 2
    workdir = args.workdir.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = workdir / "runs" / f"{stamp}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    s = Settings(
        sizes=sizes,
        variants=variants,
        repeat=max(1, args.repeat),
        repeat_all=max(1, args.repeat_all),
        poll_cycles=max(1, args.poll_cycles),
        duration=args.duration,
        concurrency=concurrency,
        visibility_repeat=max(1, args.visibility_repeat),
        visibility_timeout=args.visibility_timeout,
        io_timeout=args.io_timeout,
        series_budget=args.series_budget,
        start_timeout=args.start_timeout,
        seed=args.seed,
        max_pdu=args.max_pdu,
        reuse_association=args.reuse_association,
        allow_all_interfaces=args.allow_all_interfaces,
        workdir=workdir,
        run_dir=run_dir,
        reference=ReferenceCaps(
            args.wlmscpfs_repeat, args.wlmscpfs_repeat_all, args.wlmscpfs_visibility_repeat, skip
        ),
    )
    json_path = args.json or REPO_ROOT / "bench" / "out" / f"run-{stamp}.json"
    progress(f"variants: {', '.join(v.label for v in variants)}; sizes: {sizes}; in {run_dir}")
    report: dict[str, Any] = {
        "benchmark": "bench/run.py: wlmd vs wlmscpfs on synthetic worklists",
        "machine": machine_info(),
        "settings": {
            **{k: v for k, v in vars(args).items() if k not in ("json", "workdir")},
            "variants": [vars(v) for v in variants],
            "workdir": str(workdir),
        },
        "sizes": {},
    }
    failed = False
    try:
        preflight(variants, run_dir)
        for n in sizes:
            progress(f"N={n}: database")
            db = mwlgen.ensure_database(workdir, n, s.seed, dt.date.today(), progress)
            how = "reused" if db.generated_s is None else f"generated in {db.generated_s:.1f}s"
            progress(f"N={n}: {db.area} ({how}, {db.file_bytes / 1e6:.1f} MB)")
            block: dict[str, Any] = {
                "database": {
                    "path": str(db.area),
                    "files": n,
                    "bytes": db.file_bytes,
                    "generated_s": db.generated_s,
                    "seed": db.seed,
                    "base_date": db.base.isoformat(),
                },
                "servers": {},
            }
            report["sizes"][str(n)] = block
            for variant in variants:
                log = run_dir / f"{n}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', variant.label)}.log"
                progress(f"N={n} {variant.label}: starting")
                server = start_server(
                    variant, db.root, log, s.start_timeout, s.allow_all_interfaces
                )
                try:
                    res = measure_server(server, db, s)
                finally:
                    res_stop = stop_server(server)
                res["stop"] = res_stop
                res["log"] = {"path": str(log), **scan_log(log)}
                res["failures_total"] = total_failures(res)
                failed |= res["failures_total"] > 0
                block["servers"][variant.label] = res
                progress(f"N={n} {variant.label}: done, {res['failures_total']} failures")
            block["ratios"] = ratios(block["servers"], rows_for(concurrency))
            print(table(n, block["servers"], concurrency), flush=True)
            print(flush=True)
    except BenchError as exc:
        progress(f"stopped: {exc}")
        report["fatal"] = str(exc)
        failed = True
    except KeyboardInterrupt:
        progress("interrupted")
        report["fatal"] = "interrupted"
        failed = True
    report["targets"] = targets(report["sizes"])
    report["machine"]["loadavg_end"] = os.getloadavg()
    for t in report["targets"]:
        mark = "met" if t["met"] else "NOT met"
        print(f"target {t['target']}: {t['value']:g} (limit {t['limit']:g}) {mark}")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    progress(f"JSON: {json_path}")
    if not failed and not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        progress(f"logs kept in {run_dir}")
    if "fatal" in report:
        return 1
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
