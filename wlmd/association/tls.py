"""DICOM TLS (PS3.15 Annex B, the BCP 195 secure transport connection profiles).

The supervisor builds one server-side :class:`ssl.SSLContext` at start-up
(so a bad certificate or key stops start-up, not the first modality); each
worker wraps its accepted connection in it before the association starts.
TLS 1.2 is the minimum, as BCP 195 asks; with ``--tls-require-peer-cert``
the modality must present a certificate signed by a CA of ``--tls-ca``
(mutual authentication), otherwise a certificate it offers is still checked.
"""

from __future__ import annotations

import ssl
from typing import Protocol, cast


class TlsError(Exception):
    """The TLS settings cannot be used; ``str()`` says which file and why."""


class TlsSettings(Protocol):
    @property
    def tls_cert(self) -> str | None: ...

    @property
    def tls_key(self) -> str | None: ...

    @property
    def tls_ca(self) -> str | None: ...

    @property
    def tls_require_peer_cert(self) -> bool: ...


def server_context(settings: TlsSettings) -> ssl.SSLContext | None:
    """The context for ``settings``, or None when TLS is off (no ``--tls-cert``)."""
    if not settings.tls_cert:
        if settings.tls_key or settings.tls_ca or settings.tls_require_peer_cert:
            raise TlsError("--tls-key, --tls-ca and --tls-require-peer-cert need --tls-cert")
        return None
    if settings.tls_require_peer_cert and not settings.tls_ca:
        raise TlsError("--tls-require-peer-cert needs --tls-ca (the CAs to trust)")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    # BCP 195: forward secrecy and AEAD ciphers only for TLS 1.2 (1.3's are all fine).
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20")
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key or None)
    except (OSError, ssl.SSLError) as exc:
        raise TlsError(
            f"cannot use certificate {settings.tls_cert!r}"
            f"{f' with key {settings.tls_key!r}' if settings.tls_key else ''}: {_reason(exc)}"
        ) from None
    if settings.tls_ca:
        try:
            context.load_verify_locations(cafile=settings.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot use CA file {settings.tls_ca!r}: {_reason(exc)}") from None
        context.verify_mode = (
            ssl.CERT_REQUIRED if settings.tls_require_peer_cert else ssl.CERT_OPTIONAL
        )
    return context


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def describe_peer(sock: ssl.SSLSocket) -> str:
    """ "TLSv1.3, peer CN=CT01" for the association's log line."""
    cert = sock.getpeercert() or {}
    # "subject": a tuple of RDNs, each a tuple of (name, value) pairs (ssl docs);
    # typeshed types every value of the dict as str | tuple
    rdns = cast("tuple[tuple[tuple[str, str], ...], ...]", cert.get("subject", ()))
    subject = dict(item for rdn in rdns for item in rdn)
    who = f"peer CN={subject['commonName']}" if "commonName" in subject else "no peer certificate"
    return f"{sock.version()}, {who}"
