"""The REST API's start-up checks (wlmd.api.settings), through the command line parser."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from wlmd.api.settings import is_loopback
from wlmd.settings.commandline import UsageError, parse_args


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("", False), ("::", False), ("192.0.2.7", False),
     ("no-such-host.invalid", False)],
)  # fmt: skip
def test_loopback(address: str, loopback: bool) -> None:
    assert is_loopback(address) is loopback


@pytest.fixture(scope="module")
def pem(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A self-signed certificate with its key in one PEM file."""
    path = tmp_path_factory.mktemp("api-pki") / "both.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=wlmd", "-keyout", str(path), "-out", str(path)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return str(path)


@pytest.fixture
def token(tmp_path: Path) -> str:
    path = tmp_path / "token"
    path.write_text("0123456789abcdef0123\n")
    return str(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--api-token-file", "{token}"], "--api-token-file only allowed with --api-port"),
        (["--api-tls-cert", "{pem}"], "--api-tls-cert only allowed with --api-port"),
        (["--api-port", "8080", "--api-tls-ca", "{pem}"],
         "--api-tls-key and --api-tls-ca only allowed with --api-tls-cert"),
        (["--api-port", "8080", "--api-listen-address", "0.0.0.0", "--api-token-file", "{token}"],
         "--api-listen-address 0.0.0.0 is not loopback: it needs --api-tls-cert (HTTPS)"),
        (["--api-port", "8080", "--api-listen-address", "192.0.2.7", "--api-tls-cert", "{pem}"],
         "--api-listen-address 192.0.2.7 is not loopback: it needs --api-token-file"
         " (or client certificates, --api-tls-ca)"),
        (["--api-port", "8080", "--api-tls-cert", "{token}"], "--api-tls-cert/--api-tls-key:"),
        (["--api-port", "8080", "--api-token-file", "{short}"],
         "the token (its first line) must have at least 16 characters"),
    ],
)  # fmt: skip
def test_settings_that_cannot_work_stop_start_up(
    argv: list[str], message: str, pem: str, token: str, tmp_path: Path
) -> None:
    (tmp_path / "short").write_text("tooshort\n")
    values = {"{pem}": pem, "{token}": token, "{short}": str(tmp_path / "short")}
    filled = [values.get(word, word) for word in argv]
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_args([*filled, "104"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--api-port", "8080"],
        ["--api-port", "8080", "--api-listen-address", "::1"],
        ["--api-port", "8080", "--api-listen-address", "0.0.0.0", "--api-tls-cert", "{pem}",
         "--api-token-file", "{token}"],
        ["--api-port", "8080", "--api-listen-address", "0.0.0.0", "--api-tls-cert", "{pem}",
         "--api-tls-ca", "{pem}"],
    ],
)  # fmt: skip
def test_protected_or_local_settings_are_accepted(argv: list[str], pem: str, token: str) -> None:
    filled = [{"{pem}": pem, "{token}": token}.get(word, word) for word in argv]
    assert parse_args([*filled, "104"]).api_port == 8080


def test_the_default_is_no_api_on_localhost() -> None:
    config = parse_args(["104"])
    assert config.api_port is None and config.api_listen_address == "127.0.0.1"
