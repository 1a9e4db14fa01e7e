"""The REST API's settings, checked with the command line so that a mistake stops start-up.

What is exposed beyond this host must be protected (issue 14 item 3: "TLS and
a token or client certificates when exposed"): a listen address that is not
loopback needs HTTPS (``--api-tls-cert``) and a bearer token
(``--api-token-file``) or client certificates (``--api-tls-ca``). The HTTP
framework and server (Starlette, Uvicorn) are optional dependencies: without
them ``--api-port`` stops start-up with one line naming the packages.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from typing import Protocol


class ApiSettingsError(Exception):
    """A REST API setting that cannot work; the text is one line for the operator."""


class ApiConfig(Protocol):
    """The slice of :class:`wlmd.settings.config.Config` the API reads."""

    @property
    def api_port(self) -> int | None: ...
    @property
    def api_listen_address(self) -> str: ...
    @property
    def api_token_file(self) -> str | None: ...
    @property
    def api_tls_cert(self) -> str | None: ...
    @property
    def api_tls_key(self) -> str | None: ...
    @property
    def api_tls_ca(self) -> str | None: ...


@dataclass(frozen=True)
class Tls:
    """What Uvicorn needs for HTTPS."""

    cert: str
    key: str | None
    ca: str | None


MISSING_FRAMEWORK = (
    "--api-port needs Starlette and Uvicorn "
    "(Debian: apt install python3-starlette python3-uvicorn; pip: wlmd[api])"
)


def is_loopback(address: str) -> bool:
    """Whether every address ``address`` resolves to is a loopback address."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(address, None, type=socket.SOCK_STREAM)
    except OSError:
        return False  # cannot tell: treat as exposed, so the stricter rules apply
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def read_token(path: str) -> str:
    """The bearer token: the first line of ``path``, without surrounding white space."""
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApiSettingsError(f"--api-token-file {path}: cannot read it: {exc}") from None
    if len(token) < 16:
        raise ApiSettingsError(
            f"--api-token-file {path}: the token (its first line) must have at least 16 characters"
        )
    return token


def tls_of(config: ApiConfig) -> Tls | None:
    if config.api_tls_cert is None:
        return None
    return Tls(config.api_tls_cert, config.api_tls_key, config.api_tls_ca)


def server_context(tls: Tls) -> ssl.SSLContext:
    """The HTTPS context (also what :func:`check` loads, so a bad key stops start-up)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert, tls.key)
    if tls.ca:
        context.load_verify_locations(tls.ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def check(config: ApiConfig) -> None:
    """Raise :class:`ApiSettingsError` for settings the API cannot serve safely."""
    if config.api_port is None:
        for name in ("token_file", "tls_cert", "tls_key", "tls_ca"):
            if getattr(config, f"api_{name}") is not None:
                option = "--api-" + name.replace("_", "-")
                raise ApiSettingsError(f"{option} only allowed with --api-port")
        return
    if not all(importlib.util.find_spec(name) for name in ("starlette", "uvicorn")):
        raise ApiSettingsError(MISSING_FRAMEWORK)
    if config.api_tls_cert is None and (config.api_tls_key or config.api_tls_ca):
        raise ApiSettingsError("--api-tls-key and --api-tls-ca only allowed with --api-tls-cert")
    if config.api_token_file is not None:
        read_token(config.api_token_file)
    tls = tls_of(config)
    if tls is not None:
        try:
            server_context(tls)
        except (OSError, ssl.SSLError) as exc:
            raise ApiSettingsError(
                f"--api-tls-cert/--api-tls-key: cannot use the certificate and key: {exc}"
            ) from None
    address = config.api_listen_address
    if not is_loopback(address):
        shown = address or "all interfaces"
        if tls is None:
            raise ApiSettingsError(
                f"--api-listen-address {shown} is not loopback: it needs --api-tls-cert (HTTPS)"
            )
        if config.api_token_file is None and config.api_tls_ca is None:
            raise ApiSettingsError(
                f"--api-listen-address {shown} is not loopback: it needs --api-token-file"
                " (or client certificates, --api-tls-ca)"
            )
