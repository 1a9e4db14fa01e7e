"""The log lines an operator needs, read back from a real wlmd reached by real clients.

Each test provokes what a hospital sysadmin meets in the first week (a modality
with a wrong called AE title, an SOP class wlmd does not serve, a bad query key,
a RIS export holding the lock, a crashed worker, a dual-stack listener, a
restart, an HTTP health check on the DICOM port, one host hogging the slots)
and checks the line that says so: its level, the association tag, the peer as
people write it, and no patient data.

Servers listen on 127.0.0.1 only. A second host is 127.0.0.2 as the *source*
address of a client connecting to 127.0.0.1 (all of 127/8 is loopback on Linux).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind, Verification

from tests.helpers import servers
from tests.helpers.dcmtk import echoscu, findscu
from tests.helpers.procs import serving, title, wait_for
from tests.helpers.rawclient import Association as RawAssociation
from tests.helpers.rawclient import Rejected
from tests.helpers.servers import Server
from tests.helpers.worklists import complete_entry, make_area

pytestmark = [pytest.mark.dcmtk, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

AREA = "WLMD"
WAIT = 10.0
PYN_TIMEOUT = 10
#: an association tag: "a" + 6 base-36 digits of the start time, "." + a counter
TAG = r"\[(a[0-9a-z]{6})\.(\d+)\]"
#: a writer that holds the lockfile's write lock until its stdin closes
HOLDER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


#: with -v: the line of the readiness probe's connection (connect, close) of servers.wlmd
PROBE_ENDED = r"connection from 127\.0\.0\.1:\d+: closed by the peer before sending"


def idle(server: Server) -> None:
    """Wait until the readiness probe's worker has been forked, has ended and was reaped.

    Its connection may still wait in the listen backlog when servers.wlmd returns,
    so "no worker serving" alone proves nothing; its log line (-v) does.
    """
    wait_for(lambda: re.search(PROBE_ENDED, server.log()), f"the probe\n{server.describe()}")
    wait_for(lambda: not serving(server.proc.pid), f"no workers\n{server.describe()}")


def lines(server: Server, pattern: str) -> list[re.Match[str]]:
    return list(re.finditer(pattern, server.log()))


def one_line(server: Server, pattern: str) -> re.Match[str]:
    found = wait_for(lambda: lines(server, pattern), f"a line matching {pattern!r}")
    assert isinstance(found, list) and len(found) == 1, f"{found}\n{server.describe()}"
    return found[0]


def pyn_associate(port: int, contexts: list[tuple[str, list[str]]], source: str = "127.0.0.1"):  # type: ignore[no-untyped-def]
    ae = AE(ae_title="PYNETDICOM")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = PYN_TIMEOUT
    ae.connection_timeout = PYN_TIMEOUT
    for abstract, syntaxes in contexts:
        ae.add_requested_context(abstract, syntaxes)
    return ae.associate("127.0.0.1", port, ae_title=AREA, bind_address=(source, 0))


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> Path:
    root = tmp_path_factory.mktemp("lines-data")
    make_area(root, AREA, {"a.wl": complete_entry(PatientID="OL1", PatientName="OPERATOR^ONE")})
    return root


@pytest.fixture
def start(data_root: Path, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    with contextlib.ExitStack() as stack:

        def run(*options: str, port: int | None = None) -> Server:
            log_dir = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
            log_dir.mkdir()
            return stack.enter_context(
                servers.wlmd(data_root, list(options), log_dir=log_dir, port=port)
            )

        yield run


# --------------------------------------------------------------------------- rejections


def test_unknown_called_ae_title_is_a_warning_naming_it(
    start: Callable[..., Server], data_root: Path
) -> None:
    server = start()  # the default log level (warn): an operator sees it without -v
    result = echoscu(server.port, aec="NOSUCH")
    assert result.returncode != 0, result.describe()
    assert "Called AE Title Not Recognized" in result.output, result.describe()
    one_line(
        server,
        rf"WARNING {TAG} association ECHOSCU -> NOSUCH from 127\.0\.0\.1:\d+: rejected: "
        rf"called AE title 'NOSUCH' has no storage area in {re.escape(str(data_root))}, "
        r"0 queries",
    )


def test_caller_not_allowed_is_a_warning_naming_it(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    allow = tmp_path / "callers"
    allow.write_text(f"{AREA}  CT01\n")
    server = start("--allowed-callers", str(allow))
    result = echoscu(server.port, aec=AREA, aet="MR07")
    assert "Calling AE Title Not Recognized" in result.output, result.describe()
    one_line(
        server,
        rf"WARNING {TAG} association MR07 -> WLMD from 127\.0\.0\.1:\d+: rejected: "
        r"calling AE title 'MR07' may not query this storage area \(--allowed-callers\)",
    )


def test_refuse_rejections_stay_at_info(start: Callable[..., Server]) -> None:
    """--refuse is the operator's own doing: not a warning every modality repeats."""
    server = start("-v", "--refuse")
    result = echoscu(server.port, aec=AREA)
    assert result.returncode != 0, result.describe()
    one_line(server, rf"INFO {TAG} association ECHOSCU -> WLMD from .*: rejected: refused")
    assert " WARNING " not in server.log(), server.log()


def test_no_accepted_presentation_context_is_a_warning_naming_what_was_refused(
    start: Callable[..., Server], dcmtk: dict[str, str]
) -> None:
    server = start()
    # findscu -P proposes only Patient Root FIND, which a worklist server does not serve
    proc = subprocess.run(
        [dcmtk["findscu"], "-P", "-aec", AREA, "-to", "10", "-ta", "10", "-td", "10",
         "-k", "PatientID=", "127.0.0.1", str(server.port)],
        capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert "No Acceptable Presentation Contexts" in proc.stdout + proc.stderr, proc
    one_line(
        server,
        rf"WARNING {TAG} association FINDSCU -> WLMD from 127\.0\.0\.1:\d+: "
        r"no presentation context accepted; refused: 1\.2\.840\.10008\.5\.1\.4\.1\.2\.1\.1 "
        r"\(Patient Root Query/Retrieve Information Model - FIND\) with "
        r"1\.2\.840\.10008\.1\.2\.1 \(Explicit VR Little Endian\), .*"
        r": abstract syntax not supported",
    )
    one_line(server, r"WARNING .* aborted \(no presentation context accepted\), 0 queries")


def test_each_refused_context_is_named_at_debug(start: Callable[..., Server]) -> None:
    server = start("-d", "+xi")  # implicit VR little endian only
    assoc = pyn_associate(
        server.port,
        [
            (Verification, [ImplicitVRLittleEndian]),
            (ModalityWorklistInformationFind, [ExplicitVRLittleEndian]),
        ],
    )
    try:
        assert assoc.is_established, server.describe()
        status = assoc.send_c_echo()
        assert status and status.Status == 0x0000
    finally:
        if assoc.is_established:
            assoc.release()
    one_line(
        server,
        rf"DEBUG {TAG} presentation context 3 refused: 1\.2\.840\.10008\.5\.1\.4\.31 "
        r"\(Modality Worklist Information Model - FIND\) with 1\.2\.840\.10008\.1\.2\.1 "
        r"\(Explicit VR Little Endian\): transfer syntaxes not supported",
    )
    assert "no presentation context accepted" not in server.log()  # one was


# --------------------------------------------------------------------------- queries


def test_identifier_mismatch_names_the_offending_key_never_its_value(
    start: Callable[..., Server],
) -> None:
    server = start("-v")
    result = findscu(
        server.port,
        aec=AREA,
        keys=["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate=20241345x"],
    )
    assert result.final_status == 0xA900, result.describe()
    one_line(
        server,
        rf"INFO {TAG} C-FIND FINDSCU -> WLMD from 127\.0\.0\.1:\d+: .*status 0xA900 .*"
        r", offending \(0040,0002\) ScheduledProcedureStepStartDate, ",
    )
    assert "20241345x" not in server.log()


def test_a_query_held_up_by_a_writer_says_how_long_and_by_whom(
    start: Callable[..., Server], data_root: Path, dcmtk: dict[str, str]
) -> None:
    server = start()
    lockfile = data_root / AREA / "lockfile"
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lockfile)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    query: subprocess.Popen[str] | None = None
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "locked"
        query = subprocess.Popen(
            [dcmtk["findscu"], "-W", "-aec", AREA, "-to", "20", "-ta", "20", "-td", "20",
             "-k", "PatientID=", "127.0.0.1", str(server.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        blocked = wait_for(
            lambda: [p for p in serving(server.proc.pid) if "C-FIND #1" in title(p)],
            "the worker to wait in its C-FIND",
        )
        assert blocked
        time.sleep(1.3)  # the wait being reported, not synchronisation
        writer.stdin.close()  # the writer exits: its lock is released
        out, _ = query.communicate(timeout=WAIT)
        assert query.returncode == 0, out
    finally:
        for proc in (writer, query):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=WAIT)
    match = one_line(
        server,
        rf"WARNING {TAG} waited ([0-9.]+) s for the read lock on {re.escape(str(lockfile))}: "
        rf"it was write-locked by pid {writer.pid} \(",
    )
    assert float(match.group(3)) >= 1.2, match.group(0)


# --------------------------------------------------------------------------- peers and tags


def test_association_tags_differ_across_restarts(start: Callable[..., Server]) -> None:
    tags = []
    port = servers.free_port()
    for _ in range(2):
        server = start("-v", port=port)
        result = echoscu(server.port, aec=AREA)
        assert result.returncode == 0, result.describe()
        match = one_line(server, rf"INFO {TAG} association ECHOSCU -> WLMD")
        tags.append((match.group(1), int(match.group(2))))
        servers.stop(server.proc)
    (first, n1), (second, n2) = tags
    assert first != second, f"both runs tagged their associations {first}.N"
    assert n1 == n2, tags  # the counter restarts; the prefix tells the runs apart


def test_dual_stack_socket_logs_ipv4_peers_without_ffff(data_root: Path, tmp_path: Path) -> None:
    """Under socket activation (ListenStream=104 is a dual-stack [::]:104) IPv4 peers
    arrive as ::ffff:a.b.c.d; they are logged, and counted per host, as a.b.c.d."""
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::ffff:127.0.0.1", 0))  # reachable on 127.0.0.1 only
    listener.listen(16)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    launcher = (  # what systemd does: the socket as fd 3, LISTEN_PID = wlmd's pid
        "import os, sys; "
        f"os.dup2({fd}, 3); os.close({fd}); "
        "os.environ['LISTEN_PID'] = str(os.getpid()); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LISTEN_", "NOTIFY_"))}
    env["LISTEN_FDS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(servers.REPO_ROOT), env.get("PYTHONPATH")])
    )
    log = tmp_path / "wlmd.log"
    options = ["-v", "-ta", "20", "--max-associations", "2", "-dfp", str(data_root)]
    argv = [sys.executable, "-c", launcher, "-m", "wlmd", *options, str(servers.free_port())]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
            start_new_session=True, pass_fds=(fd,),
        )  # fmt: skip
    servers._register(proc)
    listener.close()
    try:
        wait_for(lambda: "socket from systemd" in log.read_text(), "wlmd to listen")
        with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as silent:
            wait_for(lambda: len(serving(proc.pid)) == 1, "the silent connection's worker")
            over = echoscu(port, aec=AREA)  # per host: half of 2 = 1, held by `silent`
            assert "Local Limit Exceeded" in over.output, over.describe()
            silent.close()
        wait_for(lambda: not serving(proc.pid), "the silent worker to end")
        ok = echoscu(port, aec=AREA)
        assert ok.returncode == 0, ok.describe()
        wait_for(lambda: "association ECHOSCU -> WLMD" in log.read_text(), "the association line")
    finally:
        servers.stop(proc)
    text = log.read_text()
    assert "::ffff:" not in text, text
    assert re.search(r"connection from 127\.0\.0\.1:\d+: closed by the peer", text), text
    assert re.search(
        r"association from 127\.0\.0\.1:\d+ rejected: 1 associations from 127\.0\.0\.1 running "
        r"\(--max-associations-per-host 1\)",
        text,
    ), text
    assert re.search(r"association ECHOSCU -> WLMD from 127\.0\.0\.1:\d+: released", text), text


# --------------------------------------------------------------------------- not DICOM


def test_http_request_is_closed_at_its_first_byte_and_frees_the_worker(
    start: Callable[..., Server],
) -> None:
    acse = 20
    server = start("-v", "--max-associations", "1", "-ta", str(acse))
    idle(server)
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as http:
        http.sendall(b"GET / HTTP/1.1\r\nHost: wlmd\r\n\r\n")
        http.settimeout(WAIT)
        assert http.recv(4096) == b"", "wlmd answered an HTTP request"  # a clean close
        http_port = http.getsockname()[1]
    closed_after = time.monotonic() - started
    idle(server)  # the worker is gone (reaped), so the one slot is free again
    result = echoscu(server.port, aec=AREA, extra=["-to", "5", "-ta", "5"])
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.describe()
    assert closed_after < 3 and elapsed < acse / 4, f"{closed_after:.1f}s, {elapsed:.1f}s"
    one_line(
        server,
        rf"WARNING {TAG} connection from 127\.0\.0\.1:{http_port}: "
        r"not DICOM: first byte 0x47 \('G'\), closed",
    )


# --------------------------------------------------------------------------- per-host limit


@pytest.mark.parametrize(
    "options",
    [["--max-associations", "5", "--max-associations-per-host", "2"], ["--max-associations", "4"]],
    ids=["explicit-2", "default-half-of-4"],
)
def test_one_host_cannot_take_every_slot(start: Callable[..., Server], options: list[str]) -> None:
    server = start("-v", "-ta", "20", *options)
    idle(server)
    supervisor = server.proc.pid
    with contextlib.ExitStack() as stack:
        for _ in range(2):  # silent connections that never send an A-ASSOCIATE-RQ
            stack.enter_context(socket.create_connection(("127.0.0.1", server.port), timeout=WAIT))
        wait_for(lambda: len(serving(supervisor)) == 2, "two silent workers")
        over = echoscu(server.port, aec=AREA)
        assert over.returncode != 0, over.describe()
        assert "Rejected Transient" in over.output, over.describe()
        assert "Local Limit Exceeded" in over.output, over.describe()
        one_line(
            server,
            rf"wlmd\[{supervisor}\] WARNING association from 127\.0\.0\.1:\d+ rejected: "
            r"2 associations from 127\.0\.0\.1 running \(--max-associations-per-host 2\)",
        )
        assert len(serving(supervisor)) == 2, "the rejected association was forked"
        other = pyn_associate(server.port, [(Verification, [ImplicitVRLittleEndian])], "127.0.0.2")
        try:
            assert other.is_established, f"127.0.0.2 was not admitted\n{server.describe()}"
            status = other.send_c_echo()
            assert status and status.Status == 0x0000
        finally:
            if other.is_established:
                other.release()
    one_line(server, r"association PYNETDICOM -> WLMD from 127\.0\.0\.2:\d+: released")


def test_per_host_rejections_are_logged_throttled(start: Callable[..., Server]) -> None:
    server = start("-v", "-ta", "20", "--max-associations", "9", "--max-associations-per-host", "1")
    idle(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT):
        wait_for(lambda: len(serving(server.proc.pid)) == 1, "the silent worker")
        started = time.monotonic()
        attempts = 30
        for _ in range(attempts):  # the raw client: a millisecond each, no threads
            with pytest.raises(Rejected):
                RawAssociation.open("127.0.0.1", server.port, AREA, io_timeout=WAIT)
        elapsed = time.monotonic() - started
    if elapsed >= 10:  # LogThrottle's window: more lines would be allowed
        pytest.fail(f"{attempts} rejections took {elapsed:.1f}s, not one window", pytrace=False)
    found = wait_for(
        lambda: len(lines(server, r"--max-associations-per-host 1\)")) >= 20, "20 lines"
    )
    assert found
    assert len(lines(server, r"--max-associations-per-host 1\)")) == 20, server.log()


def test_killed_worker_line_names_its_association_and_peer(start: Callable[..., Server]) -> None:
    server = start("-v")
    idle(server)
    with socket.create_connection(("127.0.0.1", server.port), timeout=WAIT) as held:
        (worker,) = wait_for(lambda: serving(server.proc.pid), "the worker")  # type: ignore[misc]
        os.kill(worker, signal.SIGKILL)
        port = held.getsockname()[1]
        match = one_line(
            server,
            rf"ERROR {TAG} worker {worker} \(serving 127\.0\.0\.1:{port}\) "
            r"killed by signal 9 \(SIGKILL\)",
        )
    assert match.group(2) == "2", "not the tag drawn for this connection (the probe had .1)"
