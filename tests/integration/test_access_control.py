"""``+ac``: the real server consults libwrap on every connection, before any PDU.

wlmd is started as ``python -m wlmd --listen-address 127.0.0.1 +ac -dfp DIR PORT``
with ``WLMD_HOSTS_ALLOW`` / ``WLMD_HOSTS_DENY`` pointing libwrap at tables in
``tmp_path`` (the diagnostic hooks of :mod:`wlmd.process.access`), and driven by DCMTK's
``echoscu`` (located by :func:`tests.helpers.dcmtk.dcmtk_tool`, never pynetdicom's
example app of the same name). Readiness is a bounded TCP-connect poll in
:mod:`tests.helpers.servers`; every server is killed at teardown.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import ClientResult, echoscu, require_dcmtk
from tests.helpers.servers import Server

pytestmark = pytest.mark.dcmtk

AREA = "WLMD"
SUCCESS = 0x0000
DENY_ALL = "ALL: ALL\n"


@pytest.fixture(autouse=True)
def _dcmtk(wlmd_available: None) -> None:
    require_dcmtk("echoscu")


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    """A storage area ``WLMD`` with only a lockfile: enough for C-ECHO with ``-aec WLMD``."""
    root = tmp_path / "data"
    (root / AREA).mkdir(parents=True)
    (root / AREA / "lockfile").touch()
    return root


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Write hosts.allow/hosts.deny and export their paths for the wlmd started next."""
    allow, deny = tmp_path / "hosts.allow", tmp_path / "hosts.deny"
    monkeypatch.setenv("WLMD_HOSTS_ALLOW", str(allow))
    monkeypatch.setenv("WLMD_HOSTS_DENY", str(deny))

    def write(allow_text: str, deny_text: str) -> None:
        allow.write_text(allow_text)
        deny.write_text(deny_text)

    return write


@pytest.fixture
def start_wlmd(data_root: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start ``wlmd +ac OPTIONS`` over ``data_root``; every server is stopped at teardown."""
    with ExitStack() as stack:

        def start(*options: str) -> Server:
            return stack.enter_context(
                servers.wlmd(data_root, ["+ac", *options], log_dir=tmp_path / "logs")
            )

        yield start


def echo(server: Server) -> ClientResult:
    return echoscu(server.port, aec=AREA)


def assert_echo_succeeds(server: Server) -> None:
    result = echo(server)
    assert result.returncode == 0, result.describe() + "\n" + server.describe()
    assert [r.status for r in result.responses] == [SUCCESS], result.describe()


def assert_echo_refused(server: Server) -> None:
    result = echo(server)
    assert result.returncode != 0, result.describe() + "\n" + server.describe()
    assert result.responses == [], result.describe()
    assert not result.rejection, "denied peers get no A-ASSOCIATE-RJ, only a closed connection"


def test_allowed_peer_is_served(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    hosts("wlmd: 127.0.0.1\n", DENY_ALL)
    server = start_wlmd()
    assert_echo_succeeds(server)


def test_denied_peer_is_disconnected(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    hosts("", DENY_ALL)
    server = start_wlmd()
    assert_echo_refused(server)
    assert "access denied by hosts.allow/hosts.deny: 127.0.0.1" in server.log()
    assert server.alive(), server.describe()


def test_rule_for_another_address_does_not_allow(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    hosts("wlmd: 127.0.0.2\n", DENY_ALL)
    assert_echo_refused(start_wlmd())


def test_rule_for_another_daemon_does_not_deny(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    hosts("", "wlmscpfs: ALL\n")
    assert_echo_succeeds(start_wlmd())


def test_denied_connection_is_closed_before_reading(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    """The supervisor closes without reading: the peer sees EOF having sent nothing."""
    hosts("", DENY_ALL)
    server = start_wlmd()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.settimeout(10)
        try:
            data = sock.recv(64)
        except ConnectionResetError:
            data = b""
    assert data == b"", f"expected a silent close, got {data!r}"


def test_denied_flood_gets_a_few_log_lines(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    """200 connections from a denied host: every one closed, at most 20 lines per 10 s."""
    hosts("", DENY_ALL)
    server = start_wlmd()
    for _ in range(200):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.settimeout(10)
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(64) == b""
    denials = [line for line in server.log().splitlines() if "access denied" in line]
    assert 1 <= len(denials) <= 2 * 20, len(denials)  # the run may span two windows
    assert len(denials) < 200
    assert server.alive(), server.describe()


def test_tables_are_read_on_every_connection(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    """As with tcpd: editing hosts.deny takes effect without restarting wlmd."""
    hosts("", DENY_ALL)
    server = start_wlmd()
    assert_echo_refused(server)
    hosts("", "")
    assert_echo_succeeds(server)
    hosts("", DENY_ALL)
    assert_echo_refused(server)


def test_twist_rule_denies_and_server_survives(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server], tmp_path: Path
) -> None:
    marker = tmp_path / "twisted"
    hosts(f"wlmd: 127.0.0.1: twist /bin/touch {marker}\n", "")
    server = start_wlmd()
    assert_echo_refused(server)
    assert_echo_refused(server)  # the first check would have exec'd without resident=1
    assert server.alive(), server.describe()
    assert not marker.exists()


def test_host_lookup_and_disable_host_lookup(
    hosts: Callable[[str, str], None], start_wlmd: Callable[..., Server]
) -> None:
    """A name rule matches with host lookup, and cannot match with ``-dhl``."""
    from wlmd.process.access import PARANOID, UNKNOWN, client_name

    name = client_name("127.0.0.1")
    if name in (UNKNOWN, PARANOID):
        pytest.skip(f"127.0.0.1 has no forward-confirmed name here ({name})")
    hosts(f"wlmd: {name}\n", DENY_ALL)
    assert_echo_succeeds(start_wlmd())
    assert_echo_refused(start_wlmd("-dhl"))


def test_startup_fails_without_libwrap(data_root: Path, tmp_path: Path) -> None:
    """``+ac`` without a loadable libwrap must stop start-up with one clear line."""
    port = servers.free_port()
    script = textwrap.dedent(
        """
        import ctypes, sys
        real_cdll = ctypes.CDLL

        class NoLibwrap(real_cdll):  # the loader cannot find libwrap.so.0
            def __init__(self, name, *args, **kwargs):
                if name and "libwrap" in str(name):
                    raise OSError(f"{name}: cannot open shared object file")
                super().__init__(name, *args, **kwargs)

        ctypes.CDLL = NoLibwrap
        from wlmd.cli import main
        sys.exit(main(sys.argv[1:]))
        """
    )
    argv = servers.wlmd_command(["+ac"], data_root, port)[3:]  # drop "python -m wlmd"
    proc = subprocess.run(
        [sys.executable, "-c", script, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
        env={**os.environ, "PYTHONPATH": str(servers.REPO_ROOT)},
        stdin=subprocess.DEVNULL,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "libwrap.so.0" in output and "libwrap0" in output, output
    assert "Traceback" not in output, "start-up failure must be one clear line:\n" + output
