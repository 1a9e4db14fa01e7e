"""The supervisor over real TCP: process model, limits, timeouts, signals, start-up errors.

Every server is wlmd started by :func:`tests.helpers.servers.wlmd` (its own process
group, killed at teardown) on 127.0.0.1, reached by DCMTK's echoscu/findscu and by
pynetdicom as SCU (every timeout set: pynetdicom 3.0.4 can hang on fast responses).

What the supervisor does is read from the kernel, not guessed: its children from
``/proc/<pid>/task/*/children`` (a zombie stays listed until it is reaped, so a
shrinking list means the supervisor has reaped), process titles from
``/proc/<pid>/cmdline`` (setproctitle rewrites it). Waiting is always a poll of such
a condition with a deadline and an attempt limit, never a fixed sleep.

The readiness probe of ``servers.wlmd`` (a TCP connect) becomes a worker that lives
until the ACSE timeout; tests that count workers start with ``-ta 2`` and first wait
for that worker to go (:func:`settled`).

Tests marked ``xfail(strict=True)`` show wlmd bugs found while writing this file;
each names the code to fix. When the bug is fixed the test passes and the strict
marker turns that into a failure, so the marker gets removed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification

from tests.helpers import servers
from tests.helpers.dcmtk import echoscu, findscu
from tests.helpers.procs import children, dead, serving, title, wait_for
from tests.helpers.rawclient import Association as RawAssociation
from tests.helpers.rawclient import identifier
from tests.helpers.servers import Server
from tests.helpers.worklists import complete_entry, make_area
from wlmd.process.worker import GRACEFUL_TIMEOUT
from wlmd.process.workers import KILL_MARGIN

AREA = "WLMD"
ACSE_TIMEOUT = 2  # -ta: how long the readiness probe's connection is held
#: The log line of a connection that ended without an association (the readiness probe).
PROBE_ENDED = re.compile(
    r"(association \? -> \? from|connection from) 127\.0\.0\.1:\d+: "
    r"(closed|.*before sending an association request)"
)
#: Upper bound for any condition a test waits for (a worker exiting, a log line, ...).
WAIT = 10.0
PYN_TIMEOUT = 10
#: echoscu timeouts for a client started in the background.
BOUNDED = ("-to", "20", "-ta", "20", "-td", "20")


def local_address(server: Server) -> tuple[str, str]:
    return ("127.0.0.1", str(server.port))


pytestmark = [
    pytest.mark.dcmtk,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]


# --------------------------------------------------------------------------- helpers


def group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (the server's session)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getpgid(int(entry)) == pgid and not dead(int(entry)):
                    members.append(int(entry))
    return members


def settled(server: Server, count: int = 0) -> None:
    """Wait until exactly ``count`` workers serve connections (readiness probe gone)."""
    wait_for(
        lambda: len(serving(server.proc.pid)) == count,
        f"{count} workers of {server.describe()}",
        timeout=ACSE_TIMEOUT + WAIT,
    )


def accepts(port: int) -> bool:
    """Whether 127.0.0.1:port accepts a TCP connection."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def log_has(server: Server, text: str) -> bool:
    return text in server.log()


def associate(
    server: Server,
    aet: str = "PYNETDICOM",
    transfer_syntaxes: list[str] | None = None,
) -> Association:
    """An established pynetdicom association (every timeout set)."""
    ae = AE(ae_title=aet)
    ae.acse_timeout = PYN_TIMEOUT
    ae.dimse_timeout = PYN_TIMEOUT
    ae.network_timeout = PYN_TIMEOUT
    ae.connection_timeout = PYN_TIMEOUT
    syntaxes = transfer_syntaxes or [ExplicitVRLittleEndian, ImplicitVRLittleEndian]
    ae.add_requested_context(Verification, syntaxes)
    ae.add_requested_context(ModalityWorklistInformationFind, syntaxes)
    assoc = ae.associate("127.0.0.1", server.port, ae_title=AREA)
    assert assoc.is_established, f"association not established\n{server.describe()}"
    return assoc


def local_port(assoc: Association) -> int:
    return int(assoc.dul.socket.socket.getsockname()[1])  # type: ignore[union-attr]


def echo_ok(assoc: Association) -> None:
    status = assoc.send_c_echo()
    assert status and status.Status == 0x0000, status


def release(assoc: Association) -> None:
    if assoc.is_established:
        assoc.release()


def workers(server: Server) -> dict[int, str]:
    return {pid: title(pid) for pid in serving(server.proc.pid)}


def read_until(proc: subprocess.Popen[bytes], text: str, timeout: float = WAIT) -> str:
    """Read ``proc``'s stdout until ``text`` shows up; fail after ``timeout`` s."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    out = b""
    deadline = time.monotonic() + timeout
    for _ in range(10_000):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
        if text.encode() in out:
            return out.decode("utf-8", "replace")
    pytest.fail(f"{text!r} not seen in:\n{out.decode('utf-8', 'replace')}", pytrace=False)


def recv_eof_within(sock: socket.socket, timeout: float) -> float:
    """Seconds until the peer closed ``sock`` (EOF or reset); fails after ``timeout``."""
    started = time.monotonic()
    sock.settimeout(timeout)
    try:
        for _ in range(1000):
            if not sock.recv(4096):
                break
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"connection still open after {timeout}s", pytrace=False)
    return time.monotonic() - started


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> Path:
    root = tmp_path_factory.mktemp("supervisor-data")
    make_area(
        root,
        AREA,
        {
            "a.wl": complete_entry(PatientID="SV1", PatientName="ALPHA^ONE"),
            "b.wl": complete_entry(PatientID="SV2", PatientName="BRAVO^TWO", Modality="MR"),
            "c.wl": complete_entry(PatientID="SV3", PatientName="CHARLIE^THREE"),
        },
    )
    return root


@pytest.fixture
def start(
    data_root: Path, tmp_path: Path, dcmtk: dict[str, str]
) -> Iterator[Callable[..., Server]]:
    """Start a fresh wlmd (``-v -ta 2`` plus options); its process group is killed at teardown.

    With ``settle`` (the default) it returns once the readiness probe's association
    has been logged and its worker reaped, so the test starts with no association.
    """
    with ExitStack() as stack:

        def run(*options: str, settle: bool = True, port: int | None = None) -> Server:
            server = stack.enter_context(
                servers.wlmd(
                    data_root,
                    ["-v", "-ta", str(ACSE_TIMEOUT), *options],
                    log_dir=tmp_path,
                    port=port,
                )
            )
            if settle:
                wait_for(
                    lambda: PROBE_ENDED.search(server.log()),
                    f"the readiness probe's connection to end\n{server.describe()}",
                    timeout=ACSE_TIMEOUT + WAIT,
                )
                settled(server)
            return server

        yield run


# --------------------------------------------------------------------------- process model


def test_fork_mode_serves_concurrent_associations_in_separate_workers(
    start: Callable[..., Server],
) -> None:
    server = start()
    supervisor = server.proc.pid
    settled(server)
    first = associate(server, aet="PYN1")
    try:
        second = associate(server, aet="PYN2")
        try:
            seen = wait_for(
                lambda: (w := workers(server)) and len(w) == 2 and all(w.values()) and w,
                "two workers",
            )
            assert isinstance(seen, dict)
            assert supervisor not in seen
            expected = {
                local_port(first): "PYN1",
                local_port(second): "PYN2",
            }
            by_port: dict[int, str] = {}
            for pid, text in seen.items():
                match = re.fullmatch(r"wlmd: worker 127\.0\.0\.1:(\d+) (\S+) -> WLMD: idle", text)
                assert match, f"worker {pid} title {text!r}"
                by_port[int(match.group(1))] = match.group(2)
            assert by_port == expected
            # the supervisor retitles itself in its own loop, after the hand-over
            # that the worker's title may already show (seen 1/50 once under load)
            wait_for(
                lambda: (
                    title(supervisor) == f"wlmd: supervisor port {server.port} [2/50 associations]"
                ),
                "the supervisor title to show 2 associations",
            )
            echo_ok(first)
            echo_ok(second)
        finally:
            release(second)
    finally:
        release(first)
    settled(server)
    wait_for(
        lambda: title(supervisor) == f"wlmd: supervisor port {server.port} [0/50 associations]",
        "the supervisor title to show 0 associations",
    )


def test_max_associations_rejects_with_local_limit_exceeded(
    start: Callable[..., Server],
) -> None:
    # every client is 127.0.0.1: the per-host limit (default 1 of 2) is off for this one
    server = start("--max-associations", "2", "--max-associations-per-host", "0")
    first = associate(server, aet="PYN1")
    try:
        second = associate(server, aet="PYN2")
        try:
            third = echoscu(server.port, aec=AREA)
            assert third.returncode != 0, third.describe()
            assert "Rejected Transient" in third.output, third.describe()
            assert "Local Limit Exceeded" in third.output, third.describe()
            assert log_has(server, "rejected: 2 associations running"), server.describe()
        finally:
            release(second)
        settled(server, 1)
        fourth = echoscu(server.port, aec=AREA)
        assert fourth.returncode == 0, fourth.describe()
        assert [r.status for r in fourth.responses] == [0x0000], fourth.describe()
        echo_ok(first)  # the held association was not disturbed
    finally:
        release(first)


def test_silent_peer_over_the_limit_does_not_stall_the_supervisor(
    start: Callable[..., Server],
) -> None:
    acse = 4
    server = start("--max-associations", "1", "-ta", str(acse))
    held = associate(server)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as silent:
            # The supervisor accepts the silent connection before echoscu's (FIFO backlog).
            wait_for(lambda: log_has(server, "1 associations running"), "the rejection log")
            started = time.monotonic()
            over = echoscu(server.port, aec=AREA)
            elapsed = time.monotonic() - started
            assert "Local Limit Exceeded" in over.output, over.describe()
            assert elapsed < acse / 2, f"rejection took {elapsed:.1f}s behind a silent peer"
            silent.close()
    finally:
        release(held)


def test_single_process_serves_associations_in_turn_in_its_own_pid(
    start: Callable[..., Server], dcmtk: dict[str, str]
) -> None:
    server = start("-s")
    supervisor = server.proc.pid
    for n in range(2):
        result = echoscu(server.port, aec=AREA, aet=f"SEQ{n}")
        assert result.returncode == 0, result.describe()
        assert [r.status for r in result.responses] == [0x0000], result.describe()
        assert children(supervisor) == [], "single-process mode forked"
    for n in range(2):
        line = wait_for(
            lambda n=n: re.search(rf"wlmd\[(\d+)\] .*association SEQ{n} -> WLMD", server.log()),
            f"the log line of SEQ{n}",
        )
        assert isinstance(line, re.Match)
        assert int(line.group(1)) == supervisor, server.log()

    held = associate(server, aet="HELD")
    waiting: subprocess.Popen[bytes] | None = None
    try:
        waiting = subprocess.Popen(
            [
                dcmtk["echoscu"],
                "-d",
                "-aet",
                "WAITING",
                "-aec",
                AREA,
                *BOUNDED,
                *local_address(server),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        # echoscu has connected and sent its A-ASSOCIATE-RQ ...
        read_until(waiting, "Requesting Association")
        # ... and a round trip on the held association proves the supervisor is busy
        # with it; so echoscu cannot have been answered.
        echo_ok(held)
        assert waiting.poll() is None, "second association served while the first was open"
        assert "association WAITING" not in server.log()
        release(held)
        rest, _ = waiting.communicate(timeout=WAIT)
        assert waiting.returncode == 0, rest.decode("utf-8", "replace")
        assert b"Received Echo Response (Success)" in rest
    finally:
        release(held)
        if waiting is not None and waiting.poll() is None:
            waiting.kill()
            waiting.wait(timeout=WAIT)
    order = wait_for(
        lambda: (
            (o := re.findall(r"association (HELD|WAITING) -> WLMD", server.log()))
            and len(o) == 2
            and o
        ),
        "both association log lines",
    )
    assert order == ["HELD", "WAITING"], server.log()
    assert children(supervisor) == []


def test_single_process_title_returns_to_supervisor(start: Callable[..., Server]) -> None:
    server = start("-s")
    result = echoscu(server.port, aec=AREA)
    assert result.returncode == 0, result.describe()
    wait_for(
        lambda: title(server.proc.pid).startswith("wlmd: supervisor port"),
        "the supervisor title after the association",
        timeout=3,
    )


# --------------------------------------------------------------------------- timeouts


def test_silent_peer_is_cut_after_acse_timeout(start: Callable[..., Server]) -> None:
    server = start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        wait_for(lambda: len(serving(server.proc.pid)) == 1, "the silent peer's worker")
        elapsed = recv_eof_within(sock, WAIT)
    assert elapsed >= ACSE_TIMEOUT - 1, f"cut after {elapsed:.1f}s, before -ta {ACSE_TIMEOUT}"
    settled(server)
    assert server.alive()


def test_sigterm_closes_a_silent_connection_soon(start: Callable[..., Server]) -> None:
    """A connection that never sends its A-ASSOCIATE-RQ does not hold a stop for -ta."""
    server = start("-ta", "30")
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        wait_for(lambda: len(serving(server.proc.pid)) == 1, "the silent peer's worker")
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        closed_after = recv_eof_within(sock, WAIT)
        assert server.proc.wait(timeout=WAIT) == 0, server.describe()
        stopped_after = time.monotonic() - started
    assert closed_after < 5 and stopped_after < 6, (closed_after, stopped_after)
    log = server.log()
    assert "of the stop request (SIGTERM), closed" in log, log
    assert "killing worker" not in log, log


def test_half_pdu_header_is_cut_after_acse_timeout(start: Callable[..., Server]) -> None:
    server = start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as sock:
        sock.sendall(b"\x01\x00\x00")  # 3 of the 6 header bytes of an A-ASSOCIATE-RQ
        recv_eof_within(sock, ACSE_TIMEOUT + 4)
    settled(server)


def test_connection_closed_before_request_frees_single_process_server(
    start: Callable[..., Server],
) -> None:
    # the readiness probe (connect + close) is the connection closed before its request
    server = start("-s", "-ta", "20", settle=False)
    started = time.monotonic()
    result = echoscu(server.port, aec=AREA, extra=["-to", "5", "-ta", "5"])
    assert result.returncode == 0, result.describe()
    assert time.monotonic() - started < 5


# --------------------------------------------------------------------------- signals


def test_sigterm_lets_the_running_association_finish(start: Callable[..., Server]) -> None:
    server = start()
    held = associate(server)
    try:
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: log_has(server, "received SIGTERM, shutting down"), "the SIGTERM log")
        # no new connections once shutting down
        wait_for(lambda: not accepts(server.port), "the listener to close")
        echo_ok(held)
        assert server.alive(), "supervisor exited with an association still running"
    finally:
        release(held)
    assert server.proc.wait(timeout=WAIT) == 0, server.describe()
    assert "terminating worker" not in server.log()
    wait_for(lambda: group_members(server.proc.pid) == [], "every wlmd process to exit")


def test_a_signal_to_the_whole_group_stops_helpers_without_restarting_them(
    start: Callable[..., Server],
) -> None:
    # Ctrl-C in a terminal, or `kill -TERM -PGID`: the helper children get the
    # signal with the supervisor. One that ends while the workers are being
    # stopped is part of the shutdown, not a crash to restart and warn about.
    server = start("--hl7-port", str(servers.free_port()), "--hl7-area", AREA, settle=False)
    wait_for(lambda: log_has(server, "hl7 listener started"), "the HL7 listener")
    os.killpg(server.proc.pid, signal.SIGTERM)
    assert server.proc.wait(timeout=WAIT) == 0, server.describe()
    log = server.log()
    assert "hl7 listener stopped (" in log, log
    assert "restarting" not in log, log
    wait_for(lambda: group_members(server.proc.pid) == [], "every wlmd process to exit")


def raw_associate(server: Server) -> RawAssociation:
    """An association by the raw client: its C-FINDs cannot get lost (pynetdicom's can)."""
    return RawAssociation.open("127.0.0.1", server.port, AREA, io_timeout=GRACEFUL_TIMEOUT + WAIT)


def find_one(assoc: RawAssociation) -> None:
    result = assoc.find(identifier({"PatientID": "SV2"}), deadline_s=WAIT)
    assert (result.status, result.matches) == (0x0000, 1), result


def test_sigterm_aborts_an_idle_association_after_the_grace_period(
    start: Callable[..., Server],
) -> None:
    # GRACEFUL_TIMEOUT is a constant (10 s), not an option; the test waits it out.
    server = start()
    held = raw_associate(server)
    try:
        (worker,) = serving(server.proc.pid)
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: log_has(server, "stop requested (SIGTERM)"), "the worker's log")
        find_one(held)  # still served during the grace period
        kind, _ = held._recv_pdu(deadline=started + GRACEFUL_TIMEOUT + WAIT)
        aborted_after = time.monotonic() - started
        assert kind == 0x07, f"expected an A-ABORT, got PDU type 0x{kind:02X}"
        assert aborted_after >= GRACEFUL_TIMEOUT - 1, f"aborted after {aborted_after:.1f}s"
        assert server.proc.wait(timeout=KILL_MARGIN + WAIT) == 0, server.describe()
    finally:
        held.close()
    log = server.log()
    assert "still running 10 s after the stop request: aborted" in log, log
    assert "aborted by wlmd (stopping)" in log, log
    assert "killing worker" not in log
    assert dead(worker)
    wait_for(lambda: group_members(server.proc.pid) == [], "every wlmd process to exit")


def test_killed_supervisor_lets_the_running_association_finish(
    start: Callable[..., Server],
) -> None:
    server = start()
    held = raw_associate(server)
    try:
        (worker,) = serving(server.proc.pid)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(timeout=WAIT)
        wait_for(
            lambda: log_has(server, "stop requested (the supervisor is gone)"),
            f"worker {worker} to notice its supervisor died",
        )
        find_one(held)
        held.release()
    finally:
        held.close()
    wait_for(lambda: dead(worker), f"worker {worker} to exit after the release")
    assert re.search(r"association BENCH -> WLMD from .*: released, 1 query", server.log())


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_supervisor_restarted_while_workers_run(
    start: Callable[..., Server], how: signal.Signals
) -> None:
    """A restart does not wait for running associations, nor cut them.

    The old supervisor closes its listening socket at once (its workers closed
    their copies when they were forked), so the new one binds the port while
    the old workers still serve their associations to the end.
    """
    old = start()
    held = raw_associate(old)
    try:
        (worker,) = serving(old.proc.pid)
        old.proc.send_signal(how)
        wait_for(lambda: log_has(old, "stop requested"), "the old worker's log")
        new = start(port=old.port)
        assert not dead(worker), "the old worker did not outlive the restart"
        result = findscu(new.port, aec=AREA, keys=["PatientID"])
        assert result.final_status == 0x0000, result.describe()
        assert sorted(ds.PatientID for ds in result.datasets) == ["SV1", "SV2", "SV3"]
        find_one(held)  # the old association, still served by the old worker
        held.release()
    finally:
        held.close()
    wait_for(lambda: dead(worker), f"old worker {worker} to exit after its release")
    if how == signal.SIGTERM:
        assert old.proc.wait(timeout=WAIT) == 0, old.describe()
    assert new.alive() and serving(new.proc.pid) == []


def test_killed_worker_is_reaped_and_logged(start: Callable[..., Server]) -> None:
    server = start()
    held = associate(server)
    try:
        (worker,) = serving(server.proc.pid)
        assert title(worker).startswith("wlmd: worker "), title(worker)
        os.kill(worker, signal.SIGKILL)
        port = local_port(held)
        killed = f"worker {worker} (serving 127.0.0.1:{port}) killed by signal 9 (SIGKILL)"
        wait_for(lambda: log_has(server, killed), "the log")
        wait_for(lambda: not held.is_established, "the peer to see the connection drop")
    finally:
        if held.is_established:
            held.abort()
    settled(server)
    result = echoscu(server.port, aec=AREA)
    assert result.returncode == 0, result.describe()
    assert server.alive()


def test_sighup_reloads_logging_and_keeps_serving(start: Callable[..., Server]) -> None:
    server = start()
    server.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: log_has(server, "SIGHUP: logging configuration reloaded"), "the log")
    result = echoscu(server.port, aec=AREA)
    assert result.returncode == 0, result.describe()
    assert server.alive()
    # logging still works after the reload: the association was logged
    wait_for(lambda: log_has(server, "association ECHOSCU -> WLMD"), "the association log")


# --------------------------------------------------------------------------- start-up


@pytest.mark.parametrize(
    ("option", "spelling"),
    [
        (["--max-associations", "0"], "--max-associations"),
        (["-pdu", "99"], "pdu"),
    ],
    ids=["max-associations-0", "pdu-99"],
)
def test_bad_option_value_fails_with_one_line(
    option: list[str], spelling: str, data_root: Path
) -> None:
    proc = servers.run_wlmd_cli(
        [
            "--listen-address",
            "127.0.0.1",
            *option,
            "-dfp",
            str(data_root),
            str(servers.free_port()),
        ]
    )
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert spelling in lines[0], lines[0]


def test_port_in_use_fails_with_a_clear_message(data_root: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = servers.run_wlmd_cli(
            ["--listen-address", "127.0.0.1", "-dfp", str(data_root), str(port)], timeout=WAIT
        )
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "cannot start" in lines[0], lines[0]
    assert "Address already in use" in lines[0], lines[0]


# --------------------------------------------------------------------------- transfer syntaxes


def _accepted_syntax(output: str) -> str:
    found = re.findall(r"Accepted Transfer Syntax: =(\S+)", output)
    assert found, output
    return found[0]


@pytest.mark.parametrize(
    ("server_option", "client_option", "expected"),
    [
        ([], ["-xe"], "LittleEndianExplicit"),
        (["+xb"], ["-xe"], "BigEndianExplicit"),  # findscu -xe proposes LE before BE
        (["+xd"], ["-xd"], "DeflatedLittleEndianExplicit"),
        (["+xd"], ["-xe"], "LittleEndianExplicit"),  # deflated not proposed
    ],
    ids=["default", "prefer-big", "prefer-deflated", "deflated-not-proposed"],
)
def test_findscu_gets_the_preferred_transfer_syntax(
    start: Callable[..., Server],
    server_option: list[str],
    client_option: list[str],
    expected: str,
) -> None:
    server = start(*server_option, settle=False)
    result = findscu(
        server.port, aec=AREA, keys=["PatientID=SV2", "PatientName"], extra=client_option
    )
    assert result.returncode == 0, result.describe()
    assert _accepted_syntax(result.output) == expected, result.describe()
    assert result.final_status == 0x0000, result.describe()
    assert [str(ds.PatientName) for ds in result.datasets] == ["BRAVO^TWO"], result.describe()


@pytest.mark.parametrize(
    ("server_option", "proposed", "expected"),
    [
        (
            ["+xd"],
            [ImplicitVRLittleEndian, ExplicitVRLittleEndian, DeflatedExplicitVRLittleEndian],
            DeflatedExplicitVRLittleEndian,
        ),
        (
            ["+xb"],
            [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian],
            ExplicitVRBigEndian,
        ),
        (
            [],
            [ImplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian],
            ExplicitVRLittleEndian,
        ),
    ],
    ids=["prefer-deflated", "prefer-big", "default"],
)
def test_preference_wins_over_the_requestor_order(
    start: Callable[..., Server], server_option: list[str], proposed: list[str], expected: str
) -> None:
    server = start(*server_option, settle=False)
    assoc = associate(server, transfer_syntaxes=proposed)
    try:
        accepted = {cx.abstract_syntax: cx.transfer_syntax[0] for cx in assoc.accepted_contexts}
        assert accepted[Verification] == expected
        assert accepted[ModalityWorklistInformationFind] == expected
        echo_ok(assoc)
    finally:
        release(assoc)
