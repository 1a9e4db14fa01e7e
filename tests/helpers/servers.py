"""Start and stop worklist servers (wlmd and DCMTK's wlmscpfs) for tests.

Both servers are started in a new session (process group) so teardown can kill the
server and every association child it forked with one ``killpg`` on a group we own.
Their stderr/stdout go to a log file that failure messages quote.

Readiness
    ``start_*`` returns once the TCP port accepts a connection, polling with short
    waits up to ``READY_TIMEOUT`` seconds; if the process exits first, or never gets
    ready, the test fails with the server's log. There are no fixed sleeps.

Isolation of wlmscpfs
    wlmscpfs 3.6.7 has no option to choose the listen address: it always binds all
    interfaces. Tests must only listen on 127.0.0.1, so wlmscpfs runs in a private
    network namespace (``unshare --net``, then ``ip link set lo up``) where the only
    interface is its own loopback. The DCMTK clients reach it by entering that
    namespace (``nsenter --net=/proc/<pid>/ns/net``); ``Server.client_wrapper`` holds
    that prefix. The readiness probe connects from a short-lived thread that has
    joined the namespace with setns(2) (network namespaces are per thread on Linux).
    Creating namespaces needs root (or CAP_SYS_ADMIN); when ``unshare --net`` is not
    possible the fallback is a plain start, which binds all interfaces — the only
    way to run wlmscpfs at all there — and is reported by ``Server.isolated``.
    ``WLMD_TEST_NO_NETNS=1`` forces that fallback.

wlmd is started with ``--listen-address 127.0.0.1`` and needs no namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers.dcmtk import require_dcmtk

READY_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
REPO_ROOT = Path(__file__).resolve().parents[2]
CLONE_NEWNET = 0x40000000

#: Every server process started by this module and not yet reaped (see conftest).
_LIVE: set[subprocess.Popen[bytes]] = set()
_LIVE_LOCK = threading.Lock()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@functools.cache
def netns_available() -> bool:
    """Whether ``unshare --net`` with a loopback works here (root, no seccomp block)."""
    if os.environ.get("WLMD_TEST_NO_NETNS") == "1":
        return False
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


@dataclass
class Server:
    """A running server: where to reach it and how to read what it logged."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    argv: list[str]
    host: str = "127.0.0.1"
    netns_pid: int | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def isolated(self) -> bool:
        return self.netns_pid is not None

    @property
    def client_wrapper(self) -> list[str]:
        """Prefix for client commands so they reach this server (netns or nothing)."""
        if self.netns_pid is None:
            return []
        return ["nsenter", f"--net=/proc/{self.netns_pid}/ns/net"]

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", "replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def describe(self) -> str:
        state = "running" if self.alive() else f"exited with {self.proc.returncode}"
        return f"{self.name} ({state}): {' '.join(self.argv)}\n--- log ---\n{self.log()[-4000:]}"


def _register(proc: subprocess.Popen[bytes]) -> None:
    with _LIVE_LOCK:
        _LIVE.add(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the server's process group (it and its association children) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=STOP_TIMEOUT)
    # forked children may outlive a parent that exited on SIGTERM
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with _LIVE_LOCK:
        _LIVE.discard(proc)


def stop_all() -> None:
    """Stop every server still registered (session teardown / atexit safety net)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        stop(proc)


def _connect(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _connect_in_netns(pid: int, host: str, port: int) -> bool:
    """Try a TCP connection from inside the network namespace of ``pid``."""
    result: list[bool] = [False]

    def probe() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        try:
            fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        except OSError:
            return
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                return
        finally:
            os.close(fd)
        result[0] = _connect(host, port)

    thread = threading.Thread(target=probe, name="netns-probe", daemon=True)
    thread.start()
    thread.join(timeout=2.0)
    return result[0]


def _wait_ready(server: Server, timeout: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    attempts = 0
    while time.monotonic() < deadline and attempts < 2000:
        attempts += 1
        if not server.alive():
            pytest.fail(
                f"{server.name} exited before it was ready\n{server.describe()}", pytrace=False
            )
        if server.netns_pid is not None:
            ready = _connect_in_netns(server.netns_pid, server.host, server.port)
        else:
            ready = _connect(server.host, server.port)
        if ready:
            return
        # poll with a growing wait; readiness is the connection, never the sleep
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    stop(server.proc)
    pytest.fail(f"{server.name} not ready after {timeout}s\n{server.describe()}", pytrace=False)


def _spawn(
    name: str, argv: list[str], env: dict[str, str], log_dir: Path | None
) -> tuple[subprocess.Popen[bytes], Path]:
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="wlmd-test-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log", dir=log_dir)[1])
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(log_dir),
            start_new_session=True,
        )
    _register(proc)
    return proc, log_path


@contextlib.contextmanager
def wlmscpfs(
    data_files_path: Path | str,
    options: Sequence[str] = (),
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    isolate: bool = True,
) -> Iterator[Server]:
    """Run DCMTK's ``wlmscpfs`` serving ``data_files_path`` (isolated, see module doc)."""
    binary = require_dcmtk("wlmscpfs")["wlmscpfs"]
    port = port or free_port()
    server_argv = [binary, *options, "-dfp", str(data_files_path), str(port)]
    env = {**os.environ, "TCP_NODELAY": "1"}
    use_netns = isolate and netns_available()
    if use_netns:
        # unshare execs sh in the new namespace, sh execs wlmscpfs: Popen.pid is wlmscpfs
        argv = [
            "unshare",
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$@"',
            "wlmscpfs",
            *server_argv,
        ]
    else:
        # Fallback: no network namespaces here (not root / blocked); wlmscpfs cannot be
        # told to bind 127.0.0.1 only, so it listens on all interfaces for the test.
        argv = server_argv
    proc, log_path = _spawn("wlmscpfs", argv, env, log_dir)
    server = Server(
        "wlmscpfs", proc, port, log_path, argv, netns_pid=proc.pid if use_netns else None
    )
    try:
        _wait_ready(server)
        yield server
    finally:
        stop(proc)


def wlmd_command(options: Sequence[str], data_files_path: Path | str, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "wlmd",
        "--listen-address",
        "127.0.0.1",
        *options,
        "-dfp",
        str(data_files_path),
        str(port),
    ]


@contextlib.contextmanager
def wlmd(
    data_files_path: Path | str,
    options: Sequence[str] = (),
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    wrapper: Sequence[str] = (),
) -> Iterator[Server]:
    """Run ``python -m wlmd --listen-address 127.0.0.1 OPTIONS -dfp PATH PORT``.

    ``wrapper`` is put in front of that command, e.g. ``unshare --mount …`` or
    ``setpriv …`` for fault injection. It must exec the command (not fork and
    wait), so that ``Server.proc`` is wlmd itself and readiness, ``alive()`` and
    teardown see the supervisor.
    """
    port = port or free_port()
    argv = [*wrapper, *wlmd_command(options, data_files_path, port)]
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc, log_path = _spawn("wlmd", argv, env, log_dir)
    server = Server("wlmd", proc, port, log_path, argv)
    try:
        _wait_ready(server)
        yield server
    finally:
        stop(proc)


@functools.cache
def wlmd_importable() -> bool:
    """Whether ``python -m wlmd --help`` currently works (the server is being written)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "wlmd", "--help"],
            capture_output=True,
            timeout=30,
            env=env,
            cwd=str(REPO_ROOT),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def run_wlmd_cli(args: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run ``python -m wlmd ARGS`` to completion (for option-parsing tests)."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "wlmd", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(REPO_ROOT),
        stdin=subprocess.DEVNULL,
        check=False,
    )
