"""DICOM TLS with DCMTK's TLS-enabled findscu/echoscu as the modality.

Certificates are made for each test session with the openssl command: a CA,
the server's certificate for 127.0.0.1, a modality's certificate signed by the
CA and one self-signed (untrusted) certificate.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import echoscu, findscu
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def _signed(pki: Path, name: str, subject: str, san: str | None = None) -> None:
    _openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", subject,
             "-keyout", str(pki / f"{name}.key"), "-out", str(pki / f"{name}.csr"))  # fmt: skip
    extensions = pki / f"{name}.ext"
    extensions.write_text(f"subjectAltName={san}\n" if san else "basicConstraints=CA:FALSE\n")
    _openssl("x509", "-req", "-in", str(pki / f"{name}.csr"), "-CA", str(pki / "ca.pem"),
             "-CAkey", str(pki / "ca.key"), "-CAcreateserial", "-days", "2",
             "-extfile", str(extensions), "-out", str(pki / f"{name}.pem"))  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pki = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=wlmd test CA", "-keyout", str(pki / "ca.key"),
             "-out", str(pki / "ca.pem"))  # fmt: skip
    _signed(pki, "server", "/CN=localhost", "IP:127.0.0.1,DNS:localhost")
    _signed(pki, "modality", "/CN=CT01")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=INTRUDER", "-keyout", str(pki / "intruder.key"),
             "-out", str(pki / "intruder.pem"))  # fmt: skip
    return pki


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tls-root")
    make_area(root, AREA, {"a.wl": complete_entry(PatientID="TLS1")})
    return root


def _server_options(pki: Path, mutual: bool) -> list[str]:
    options = ["-v", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key")]
    if mutual:
        options += ["--tls-ca", str(pki / "ca.pem"), "--tls-require-peer-cert"]
    return options


def _client(pki: Path, name: str | None) -> list[str]:
    """findscu/echoscu TLS options: anonymous (+tla) or with ``name``'s key and certificate."""
    if name is None:
        identity = ["+tla"]
    else:
        identity = ["+tls", str(pki / f"{name}.key"), str(pki / f"{name}.pem"), "-pw"]
    return [*identity, "+cf", str(pki / "ca.pem")]


def test_mutual_tls_query(pki: Path, root: Path) -> None:
    with servers.wlmd(root, _server_options(pki, mutual=True)) as server:
        result = findscu(server.port, aec=AREA, keys=["PatientID"], extra=_client(pki, "modality"))
        assert result.final_status == 0x0000, result.describe()
        assert [ds.PatientID for ds in result.datasets] == ["TLS1"]
        assert echoscu(server.port, aec=AREA, extra=_client(pki, "modality")).returncode == 0
        assert "peer CN=CT01" in server.log()


@pytest.mark.parametrize("who", ["no certificate", "untrusted certificate", "plain TCP"])
def test_mutual_tls_refuses_unauthenticated_modalities(pki: Path, root: Path, who: str) -> None:
    extra = {
        "no certificate": _client(pki, None),
        "untrusted certificate": _client(pki, "intruder"),
        "plain TCP": [],
    }[who]
    with servers.wlmd(root, _server_options(pki, mutual=True)) as server:
        result = findscu(server.port, aec=AREA, keys=["PatientID"], extra=extra)
        assert result.datasets == [] and result.final_status is None, result.describe()
        assert "TLS handshake failed" in server.log()
        # and the server is unharmed
        ok = findscu(server.port, aec=AREA, keys=["PatientID"], extra=_client(pki, "modality"))
        assert ok.final_status == 0x0000


def test_server_only_tls(pki: Path, root: Path) -> None:
    with servers.wlmd(root, _server_options(pki, mutual=False)) as server:
        result = findscu(server.port, aec=AREA, keys=["PatientID"], extra=_client(pki, None))
        assert result.final_status == 0x0000, result.describe()
        assert "no peer certificate" in server.log()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--tls-key", "{pki}/server.key"], "need --tls-cert"),
        (["--tls-cert", "{pki}/server.pem", "--tls-require-peer-cert"], "needs --tls-ca"),
        (["--tls-cert", "{pki}/server.pem", "--tls-key", "{pki}/intruder.key"], "cannot use"),
        (["--tls-cert", "{pki}/ca.key"], "cannot use certificate"),
    ],
)
def test_bad_tls_settings_stop_start_up(pki: Path, options: list[str], message: str) -> None:
    args = [o.replace("{pki}", str(pki)) for o in options]
    result = servers.run_wlmd_cli([*args, "-dfp", str(pki), "104"])
    assert result.returncode == 2
    assert result.stderr.startswith("wlmd: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
