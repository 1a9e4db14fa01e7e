"""The HL7 listener's transport against a real wlmd: MLLP over TLS, start-up checks, the
connection limit. Certificates are made in the test with the openssl command."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.hl7 import TIMEOUT, exchange, fixture, msa, read_acks, wait_listening
from tests.helpers.required import need
from tests.helpers.worklists import make_area, query
from wlmd.hl7 import mllp
from wlmd.services.hl7intake import MAX_CONNECTIONS

OPTIONS = ["-v", "--hl7-station-default", "CR=CR01"]


def order(tag: str) -> bytes:
    return (
        fixture("orm-medora-ascii-lf.hl7")
        .replace(b"MA77001", tag.encode())
        .replace(b"MED00042", f"{tag}-C".encode())
    )


def wait_for_log(server: servers.Server, pattern: str, count: int = 1) -> str:
    """The log once ``pattern`` occurs ``count`` times (bounded: 10 s, polled)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        log = server.log()
        if len(re.findall(pattern, log)) >= count or time.monotonic() > deadline:
            return log
        time.sleep(0.05)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(shutil.which("openssl"), "the openssl command is not installed")
    pki = tmp_path_factory.mktemp("hl7-pki")
    for name in ("server", "other"):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.pem")],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
    (pki / "garbage.pem").write_text("not a certificate\n")
    return pki


@pytest.fixture(scope="module")
def tls_server(
    pki: Path, tmp_path_factory: pytest.TempPathFactory, wlmd_available: None
) -> Iterator[tuple[servers.Server, int]]:
    root = tmp_path_factory.mktemp("hl7-tls")
    make_area(root, "WLMD", {})
    port = servers.free_port()
    options = [*OPTIONS, "--hl7-port", str(port)]
    options += ["--hl7-tls-cert", str(pki / "server.pem"), "--hl7-tls-key", str(pki / "server.key")]
    with servers.wlmd(root, options) as running:
        wait_listening(port)
        yield running, port


def test_mllp_over_tls_is_acknowledged_and_applied(
    pki: Path, tls_server: tuple[servers.Server, int]
) -> None:
    running, port = tls_server
    context = ssl.create_default_context(cafile=str(pki / "server.pem"))  # verifies 127.0.0.1
    with (
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        assert conn.version() in ("TLSv1.2", "TLSv1.3")
        conn.sendall(mllp.frame(order("TLS0001")))
        (ack,) = read_acks(conn)
    assert msa(ack)[1:3] == ["AA", "TLS0001-C"], ack
    result = findscu(running.port, query(AccessionNumber="TLS0001"), aec="WLMD")
    assert result.final_status == 0 and len(result.datasets) == 1, result.describe()


def test_a_plain_client_on_the_tls_port_is_closed_and_logged(
    tls_server: tuple[servers.Server, int],
) -> None:
    running, port = tls_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as conn:
        conn.sendall(mllp.frame(order("PLAIN01")))
        with contextlib.suppress(ConnectionResetError):
            while conn.recv(4096):  # a TLS alert at most, then the close (not the timeout)
                pass
    log = wait_for_log(
        running, r"HL7 connection from 127\.0\.0\.1:\d+ closed: TLS handshake failed"
    )
    assert re.search(r"closed: TLS handshake failed \([a-z ]+\)", log), log
    result = findscu(running.port, query(AccessionNumber="PLAIN01"), aec="WLMD")
    assert result.final_status == 0 and result.datasets == [], "nothing applied"
    assert running.alive()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        (("garbage.pem", "server.key"), "cannot use the certificate and key: not a PEM"),
        (("server.pem", "other.key"), "cannot use the certificate and key: key values mismatch"),
        (("", "server.key"), "--hl7-tls-key only allowed with --hl7-tls-cert"),
    ],
)
def test_a_bad_certificate_or_key_stops_start_up_with_one_line(
    pki: Path, tmp_path: Path, files: tuple[str, str], expected: str
) -> None:
    make_area(tmp_path, "WLMD", {})
    cert, key = files
    args = ["--hl7-port", str(servers.free_port())]
    args += ["--hl7-tls-cert", str(pki / cert)] if cert else []
    args += ["--hl7-tls-key", str(pki / key), "-dfp", str(tmp_path), str(servers.free_port())]
    result = servers.run_wlmd_cli(args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_a_bad_mapping_file_stops_start_up_with_one_line(tmp_path: Path) -> None:
    make_area(tmp_path, "WLMD", {})
    mapping = tmp_path / "site.map"
    mapping.write_text("PatientID = PID-3.1\nPatientNmae = PID-5 as name\n")
    args = ["--hl7-port", str(servers.free_port()), "--hl7-mapping", str(mapping)]
    result = servers.run_wlmd_cli([*args, "-dfp", str(tmp_path), str(servers.free_port())])
    assert result.returncode == 2, result
    (line,) = result.stderr.strip().splitlines()
    assert "site.map line 2: 'PatientNmae' is not a DICOM keyword" in line, line


def test_the_connection_limit(tmp_path: Path, wlmd_available: None) -> None:
    area = make_area(tmp_path, "WLMD", {})
    port = servers.free_port()
    with servers.wlmd(tmp_path, [*OPTIONS, "--hl7-port", str(port)]) as running:
        wait_listening(port)  # its probe's slot freed before the 64 are opened:
        wait_for_log(running, r"closed by the sender after 0 message")
        with contextlib.ExitStack() as stack:
            open_ = []
            for n in range(MAX_CONNECTIONS):  # each one used: its ACK proves it is served
                conn = stack.enter_context(
                    socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
                )
                conn.sendall(mllp.frame(order(f"LIM{n:04d}")))
                open_.append(conn)
            assert [msa(read_acks(c)[0])[1] for c in open_] == ["AA"] * MAX_CONNECTIONS
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as extra:
                started = time.monotonic()
                extra.sendall(mllp.frame(order("LIMX")))
                with contextlib.suppress(ConnectionResetError):
                    assert extra.recv(4096) == b"", "closed without an answer"
                assert time.monotonic() - started < 5.0, "closed at once, not at a timeout"
            log = wait_for_log(running, r"refused: 64 connections open")
            assert re.search(r"HL7 connection from 127\.0\.0\.1 refused: 64 connections open", log)
        # All closed: their threads see the end and free their slots, one log line each.
        log = wait_for_log(running, r"closed by the sender after 1 message", MAX_CONNECTIONS)
        assert len(re.findall(r"closed by the sender after 1 message", log)) == MAX_CONNECTIONS
        (ack,) = exchange(port, mllp.frame(order("LIMAFTER")))
        assert msa(ack)[1] == "AA"
    assert len(list(area.glob("*.wl"))) == MAX_CONNECTIONS + 1, "the refused one not applied"
