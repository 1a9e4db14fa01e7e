"""wlmd as a service: systemd readiness and socket activation, --daemon and --pid-file, --config.

Readiness here is what systemd itself uses: the test binds a unix datagram
socket, passes it as ``$NOTIFY_SOCKET`` and waits for ``READY=1`` (no TCP
probe, no sleep). A daemon is found through its pid file, which wlmd writes
before it announces readiness. Every server listens on 127.0.0.1 only and is
killed at teardown; every wait has a deadline.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import echoscu, findscu
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"
DEADLINE = 20.0


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    root = tmp_path / "worklists"
    make_area(root, AREA, {f"e{n}.wl": complete_entry(PatientID=f"P{n}") for n in range(3)})
    return root


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(servers.REPO_ROOT), env.get("PYTHONPATH")])
    )
    return env


class Notifications:
    """A $NOTIFY_SOCKET: the datagrams wlmd sends to systemd."""

    def __init__(self, directory: Path) -> None:
        self.path = str(directory / "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.received: list[str] = []

    def wait_for(self, state: str, proc: subprocess.Popen[bytes] | None = None) -> str:
        """Wait for a datagram with the line ``state``; return the whole datagram."""
        deadline = time.monotonic() + DEADLINE
        for message in self.received:
            if state in message.splitlines():
                return message
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                log = getattr(proc, "log_path", None)
                text = log.read_text(errors="replace") if log else ""
                pytest.fail(f"wlmd exited with {proc.returncode} before sending {state}:\n{text}")
            self.sock.settimeout(min(0.5, max(0.01, deadline - time.monotonic())))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.received.append(message)
            if state in message.splitlines():
                return message
        pytest.fail(f"no {state} from wlmd within {DEADLINE}s; got {self.received}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[Notifications]:
    notifications = Notifications(tmp_path)
    yield notifications
    notifications.close()


@contextlib.contextmanager
def running(
    argv: list[str], env: dict[str, str], log: Path, **popen
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            **popen,
        )
    servers._register(proc)
    proc.log_path = log  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        servers.stop(proc)


def wlmd_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "wlmd", *args]


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    return False


# --- systemd: Type=notify -----------------------------------------------------------------


def test_ready_is_sent_once_listening_and_stopping_on_sigterm(
    data_path: Path, notify: Notifications, tmp_path: Path
) -> None:
    port = servers.free_port()
    env = {**_env(), "NOTIFY_SOCKET": notify.path}
    argv = wlmd_argv("--listen-address", "127.0.0.1", "-dfp", str(data_path), str(port))
    with running(argv, env, tmp_path / "wlmd.log") as proc:
        ready = notify.wait_for("READY=1", proc)
        assert f"STATUS=listening on 127.0.0.1:{port}" in ready.splitlines()
        # READY means it: the very first association after it succeeds.
        assert echoscu(port, aec=AREA).returncode == 0
        proc.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", proc=None)
        assert proc.wait(timeout=DEADLINE) == 0


def test_abstract_notify_socket_is_supported(data_path: Path, tmp_path: Path) -> None:
    name = f"wlmd-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(DEADLINE)
    try:
        env = {**_env(), "NOTIFY_SOCKET": "@" + name}
        argv = wlmd_argv(
            "--listen-address", "127.0.0.1", "-dfp", str(data_path), str(servers.free_port())
        )
        with running(argv, env, tmp_path / "wlmd.log"):
            # loading progress (EXTEND_TIMEOUT_USEC, STATUS) comes first
            received = [sock.recv(4096).decode() for _ in range(3)]
            assert "READY=1" in received[-1].splitlines(), received
    finally:
        sock.close()


# --- systemd: socket activation -------------------------------------------------------------


def test_socket_activation_serves_the_inherited_socket(
    data_path: Path, notify: Notifications, tmp_path: Path
) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    unused_port = servers.free_port()

    fd = listener.fileno()
    env = {**_env(), "NOTIFY_SOCKET": notify.path, "LISTEN_FDS": "1"}
    # What systemd does: the socket as descriptor 3, LISTEN_PID = wlmd's own pid
    # (this launcher moves the socket to fd 3, sets its pid and execs wlmd in place).
    launcher = (
        "import os, sys; "
        f"os.dup2({fd}, 3); os.close({fd}); "
        "os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    argv = [
        sys.executable,
        "-c",
        launcher,
        *wlmd_argv("-v", "-dfp", str(data_path), str(unused_port))[1:],
    ]
    log = tmp_path / "wlmd.log"
    with running(argv, env, log, pass_fds=(fd,)) as proc:
        listener.close()  # only wlmd holds it now
        notify.wait_for("READY=1", proc)
        result = findscu(port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000, result.describe()
        assert sorted(ds.PatientID for ds in result.datasets) == ["P0", "P1", "P2"]
        # The port on the command line was not bound.
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", unused_port)) != 0
    text = log.read_text()
    assert "socket from systemd" in text
    # ...and wlmd says that the port it was given is not where it listens
    assert (
        f"port {unused_port} not used: systemd passed the listening socket 127.0.0.1:{port}" in text
    )


def test_socket_activation_for_another_pid_is_ignored(
    data_path: Path, notify: Notifications, tmp_path: Path
) -> None:
    """LISTEN_FDS inherited from a parent (LISTEN_PID not ours) must not be used."""
    port = servers.free_port()
    env = {**_env(), "NOTIFY_SOCKET": notify.path, "LISTEN_FDS": "1", "LISTEN_PID": "1"}
    argv = wlmd_argv("--listen-address", "127.0.0.1", "-dfp", str(data_path), str(port))
    with running(argv, env, tmp_path / "wlmd.log") as proc:
        notify.wait_for("READY=1", proc)
        assert echoscu(port, aec=AREA).returncode == 0


# --- classic daemon: --daemon, --pid-file -------------------------------------------------------


def _daemon(data_path: Path, pid_file: Path, port: int, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        wlmd_argv(
            "--daemon",
            "--pid-file",
            str(pid_file),
            "--listen-address",
            "127.0.0.1",
            *extra,
            "-dfp",
            str(data_path),
            str(port),
        ),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@contextlib.contextmanager
def daemon_running(data_path: Path, pid_file: Path, port: int, *extra: str) -> Iterator[int]:
    started = _daemon(data_path, pid_file, port, *extra)
    assert started.returncode == 0, started.stderr
    pid = _wait_for_pid_file(pid_file)
    try:
        yield pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not _wait_gone(pid):
            os.kill(pid, signal.SIGKILL)


def _wait_for_pid_file(pid_file: Path) -> int:
    """The daemon's pid, once its pid file names it and it accepts connections."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        text = pid_file.read_text() if pid_file.exists() else ""
        if text.strip().isdigit():
            return int(text)
        time.sleep(0.02)
    pytest.fail(f"no pid in {pid_file} within {DEADLINE}s")


def test_daemon_detaches_serves_and_writes_pid_file(data_path: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "wlmd.pid"
    port = servers.free_port()
    log_file = tmp_path / "daemon.log"
    logging_conf = tmp_path / "logging.conf"
    logging_conf.write_text(
        "[loggers]\nkeys = root\n[handlers]\nkeys = file\n[formatters]\nkeys = plain\n"
        "[logger_root]\nlevel = INFO\nhandlers = file\n"
        f"[handler_file]\nclass = FileHandler\nformatter = plain\nargs = ({str(log_file)!r},)\n"
        "[formatter_plain]\nformat = %(process)d %(levelname)s %(message)s\n"
    )
    with daemon_running(data_path, pid_file, port, "-lc", str(logging_conf)) as pid:
        # Detached: a new session (double fork: not its leader, so it can never get a
        # controlling terminal back), not our child, not the launcher.
        assert os.getsid(pid) != os.getsid(0)
        assert os.getsid(pid) != pid
        assert pid != os.getpid()
        with open(f"/proc/{pid}/status") as status:
            ppid = next(int(line.split()[1]) for line in status if line.startswith("PPid:"))
        assert ppid != os.getpid()
        assert os.readlink(f"/proc/{pid}/cwd") == "/"
        result = findscu(port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000, result.describe()
        assert len(result.datasets) == 3
        # Log handlers survive daemonisation: the daemon's own lines reach the file.
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and "3 matches" not in log_file.read_text():
            time.sleep(0.02)
        text = log_file.read_text()
        assert f"{pid} INFO running in the background as pid {pid}" in text
        assert "3 matches" in text
    assert _wait_gone(pid)
    assert not pid_file.exists(), "pid file left behind after SIGTERM"


def test_second_start_with_same_pid_file_fails_clearly(data_path: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "wlmd.pid"
    with daemon_running(data_path, pid_file, servers.free_port()) as pid:
        second = _daemon(data_path, pid_file, servers.free_port())
        assert second.returncode == 1
        assert f"already running as pid {pid}" in second.stderr
        assert str(pid_file) in second.stderr
        assert pid_file.read_text().strip() == str(pid)  # not clobbered


def test_stale_pid_file_is_replaced(data_path: Path, tmp_path: Path) -> None:
    pid_file = tmp_path / "wlmd.pid"
    # A pid file left by a crashed wlmd: no one holds its lock. The pid it names may
    # even be alive (pid reuse): ours is, and must not stop the start.
    pid_file.write_text(f"{os.getpid()}\n")
    port = servers.free_port()
    with daemon_running(data_path, pid_file, port) as pid:
        assert pid != os.getpid()
        assert echoscu(port, aec=AREA).returncode == 0


def test_daemon_start_failure_is_reported_before_detaching(data_path: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        pid_file = tmp_path / "wlmd.pid"
        result = _daemon(data_path, pid_file, port)
    assert result.returncode == 1
    assert "cannot start" in result.stderr and "in use" in result.stderr
    assert not pid_file.exists()


def test_pid_file_in_missing_directory_fails_start(data_path: Path, tmp_path: Path) -> None:
    result = _daemon(data_path, tmp_path / "no" / "such" / "wlmd.pid", servers.free_port())
    assert result.returncode == 1
    assert "cannot open pid file" in result.stderr


def test_foreground_pid_file(data_path: Path, notify: Notifications, tmp_path: Path) -> None:
    pid_file = tmp_path / "wlmd.pid"
    env = {**_env(), "NOTIFY_SOCKET": notify.path}
    argv = wlmd_argv(
        "--pid-file",
        str(pid_file),
        "--listen-address",
        "127.0.0.1",
        "-dfp",
        str(data_path),
        str(servers.free_port()),
    )
    with running(argv, env, tmp_path / "wlmd.log") as proc:
        notify.wait_for("READY=1", proc)
        assert pid_file.read_text() == f"{proc.pid}\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=DEADLINE) == 0
    assert not pid_file.exists()


# --- --config ---------------------------------------------------------------------


def test_server_runs_from_a_configuration_file(
    data_path: Path, notify: Notifications, tmp_path: Path
) -> None:
    port = servers.free_port()
    conf = tmp_path / "wlmd.conf"
    conf.write_text(
        f"port = {port}\n"
        f"data-files-path = {data_path}\n"
        "listen-address = 127.0.0.1\n"
        "limit-answers = 2\n"
        "log-level = info\n"
    )
    env = {**_env(), "NOTIFY_SOCKET": notify.path}
    log = tmp_path / "wlmd.log"
    with running(wlmd_argv("--config", str(conf)), env, log) as proc:
        notify.wait_for("READY=1", proc)
        result = findscu(port, aec=AREA, keys=["PatientID"])
        # limit-answers from the file: 2 of 3, then "more matches than allowed" (0xFE00)
        assert len(result.datasets) == 2, result.describe()
        assert result.final_status == 0xFE00
    assert f"listening on 127.0.0.1:{port}" in log.read_text()  # log-level info from the file


def test_bad_configuration_line_stops_start(tmp_path: Path) -> None:
    conf = tmp_path / "wlmd.conf"
    conf.write_text("port = 11112\nmax-associatons = 5\n")
    result = servers.run_wlmd_cli(["--config", str(conf)])
    assert result.returncode == 2
    assert result.stderr == f"wlmd: {conf}:2: unknown setting 'max-associatons'\n"
