"""Start-up errors and log lines as journald receives them: once, at the right priority.

Under a systemd unit stderr is a stream to journald and ``$JOURNAL_STREAM``
names its device and inode (systemd.exec(5)). These tests give a real wlmd
process a file as stderr and set ``$JOURNAL_STREAM`` to that file's
``dev:ino``, exactly what wlmd checks; what it writes there is what
journald would parse (``<3>`` prefixes, sd-daemon(3)). A unix datagram
socket stands in for ``/dev/log``, so the tests also see what would have
gone through syslog as well: nothing, under the journal.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"
DEADLINE = 20.0
SHIPPED_LOGGING_CONF = servers.REPO_ROOT / "etc" / "logging.conf"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
    env.pop("JOURNAL_STREAM", None)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(servers.REPO_ROOT), env.get("PYTHONPATH")])
    )
    return {**env, **extra}


def _stream_id(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def run_wlmd(args: list[str], tmp_path: Path, *, journal: bool) -> tuple[int, str, str]:
    """Run wlmd to completion, stderr to a file that is "the journal" if ``journal``."""
    out, err = tmp_path / "stdout", tmp_path / "stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        env = _env(JOURNAL_STREAM=_stream_id(err)) if journal else _env()
        proc = subprocess.run(
            [sys.executable, "-m", "wlmd", *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            cwd=str(tmp_path),
            timeout=DEADLINE,
            check=False,
        )
    return proc.returncode, out.read_text(), err.read_text()


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    root = tmp_path / "worklists"
    make_area(root, AREA, {"e0.wl": complete_entry(PatientID="P0")})
    return root


@pytest.fixture
def dev_log(tmp_path: Path) -> Iterator[tuple[Path, socket.socket]]:
    """A syslog socket (what /dev/log is), non-blocking: recv() shows what arrived."""
    path = tmp_path / "dev-log"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    yield path, sock
    sock.close()


def _syslog_received(sock: socket.socket) -> list[str]:
    got = []
    for _ in range(1000):
        try:
            got.append(sock.recv(65536).decode(errors="replace"))
        except BlockingIOError:
            break
    return got


def shipped_logging_conf(tmp_path: Path, dev_log: Path) -> Path:
    """etc/logging.conf as installed, with the test's /dev/log."""
    text = SHIPPED_LOGGING_CONF.read_text()
    assert '"/dev/log"' in text
    conf = tmp_path / "logging.conf"
    conf.write_text(text.replace('"/dev/log"', repr(str(dev_log))))
    return conf


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port on 127.0.0.1 that something else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield taken.getsockname()[1]


# --- configuration errors (exit status 2) ------------------------------------------------


def test_bad_configuration_line_is_one_error_line_in_the_journal(tmp_path: Path) -> None:
    conf = tmp_path / "wlmd.conf"
    conf.write_text("port = 11112\nmax-associatons = 5\n")
    status, out, err = run_wlmd(["--config", str(conf)], tmp_path, journal=True)
    assert status == 2
    assert out == ""
    # exactly one line, at priority 3 (err), naming the file and line
    assert err == f"<3>wlmd: {conf}:2: unknown setting 'max-associatons'\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-associations", "0", "104"], "wlmd: invalid value for --max-associations"),
        (["--no-such-option", "104"], "wlmd: unknown option: --no-such-option"),
        (["-lc", "{broken}", "104"], "wlmd: bad --log-config file"),
        (["--tls-cert", "{broken}", "104"], "wlmd: "),  # not a certificate
    ],
    ids=["bad value", "unknown option", "unusable logging config", "unusable TLS file"],
)
def test_usage_errors_are_one_error_line_in_the_journal(
    tmp_path: Path, args: list[str], message: str
) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("[loggers]\nkeys = root\n")
    args = [arg.format(broken=broken) for arg in args]
    status, _, err = run_wlmd(args, tmp_path, journal=True)
    assert status == 2
    assert err.count("\n") == 1, err
    assert err.startswith("<3>" + message), err


def test_journal_stream_of_another_file_leaves_stderr_plain(tmp_path: Path) -> None:
    """$JOURNAL_STREAM inherited by a child whose stderr is elsewhere: no prefixes."""
    conf = tmp_path / "wlmd.conf"
    conf.write_text("port = 11112\nmax-associatons = 5\n")
    other = tmp_path / "other"
    other.write_text("")
    err_path = tmp_path / "stderr"
    with open(err_path, "wb") as stderr:
        proc = subprocess.run(
            [sys.executable, "-m", "wlmd", "--config", str(conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=_env(JOURNAL_STREAM=_stream_id(other)),
            timeout=DEADLINE,
            check=False,
        )
    assert proc.returncode == 2
    assert err_path.read_text() == f"wlmd: {conf}:2: unknown setting 'max-associatons'\n"


# --- start-up errors after logging is set up (exit status 1) -------------------------------


def test_port_in_use_names_the_address_and_port(
    tmp_path: Path, data_path: Path, taken_port: int
) -> None:
    args = ["--listen-address", "127.0.0.1", "-dfp", str(data_path), str(taken_port)]
    status, _, err = run_wlmd(args, tmp_path, journal=False)
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].endswith(
        f" CRITICAL cannot start: cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    ), err
    assert not lines[0].startswith("<")  # a plain pipe: no journal prefixes


def test_unresolvable_listen_address_names_it(tmp_path: Path, data_path: Path) -> None:
    args = ["--listen-address", "no-such-host.invalid", "-dfp", str(data_path), "11112"]
    status, _, err = run_wlmd(args, tmp_path, journal=True)
    assert status == 1
    assert err.startswith("<2>CRITICAL cannot start: cannot listen on no-such-host.invalid:11112: ")
    assert err.count("\n") == 1, err


def test_port_in_use_with_shipped_logging_reaches_the_journal_once(
    tmp_path: Path, data_path: Path, taken_port: int, dev_log: tuple[Path, socket.socket]
) -> None:
    conf = shipped_logging_conf(tmp_path, dev_log[0])
    args = ["-lc", str(conf), "--listen-address", "127.0.0.1", "-dfp", str(data_path)]
    status, out, err = run_wlmd([*args, str(taken_port)], tmp_path, journal=True)
    assert status == 1
    assert out == ""
    assert err == (
        "<2>CRITICAL cannot start: "
        f"cannot listen on 127.0.0.1:{taken_port}: Address already in use\n"
    )
    # not a second time through syslog (journald reads /dev/log too)
    assert _syslog_received(dev_log[1]) == []


def test_port_in_use_with_shipped_logging_outside_systemd_goes_to_syslog(
    tmp_path: Path, data_path: Path, taken_port: int, dev_log: tuple[Path, socket.socket]
) -> None:
    conf = shipped_logging_conf(tmp_path, dev_log[0])
    args = ["-lc", str(conf), "--listen-address", "127.0.0.1", "-dfp", str(data_path)]
    status, _, err = run_wlmd([*args, str(taken_port)], tmp_path, journal=False)
    assert status == 1
    message = (
        f"CRITICAL cannot start: cannot listen on 127.0.0.1:{taken_port}: Address already in use"
    )
    (datagram,) = [d for d in _syslog_received(dev_log[1]) if "CRITICAL" in d]
    # facility daemon (3) * 8 + crit (2) = 26, ident wlmd[pid]
    assert datagram.startswith("<26>wlmd[") and datagram.endswith(f"]: {message}\0"), datagram
    # and on the terminal, once, so a start by hand shows why it failed
    assert err.count(message) == 1 and err.count("\n") == 1, err


# --- a running server under the journal ------------------------------------------------------


def test_association_lines_reach_the_journal_once_at_info(
    tmp_path: Path, data_path: Path, dev_log: tuple[Path, socket.socket]
) -> None:
    conf = shipped_logging_conf(tmp_path, dev_log[0])
    port = servers.free_port()
    log = tmp_path / "journal"
    argv = servers.wlmd_command(["-lc", str(conf)], data_path, port)
    with open(log, "wb") as out:
        # as under systemd: stdout and stderr are the one journal stream
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(JOURNAL_STREAM=_stream_id(log)),
            start_new_session=True,
        )
    servers._register(proc)
    server = servers.Server("wlmd", proc, port, log, argv)
    try:
        servers._wait_ready(server)
        result = findscu(port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000, result.describe()
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline and "association FINDSCU" not in server.log():
            time.sleep(0.02)
    finally:
        servers.stop(proc)
    lines = server.log().splitlines()
    find = [line for line in lines if line.startswith("<6>INFO [") and "C-FIND FINDSCU" in line]
    assoc = [line for line in lines if "association FINDSCU -> WLMD" in line]
    assert len(find) == 1, lines
    assert len(assoc) == 1 and assoc[0].startswith("<6>INFO ["), lines
    assert all(line.startswith(("<6>", "<4>", "<3>", "<2>")) for line in lines), lines
    assert len(set(lines)) == len(lines), "a line reached the journal twice"
    assert _syslog_received(dev_log[1]) == []
