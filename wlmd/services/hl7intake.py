"""The HL7 order listener: MLLP over TCP (TLS optional), a supervised helper child.

The supervisor binds the port before READY=1 (:class:`Hl7Data.preload`: a
port in use stops start-up with one line) and runs :func:`run_listener` as a
helper child (:mod:`wlmd.process.helpers`), which restarts it if it dies.

A thread per connection, at most :data:`MAX_CONNECTIONS` at once (one more is
closed at once, logged); each waits at most :data:`IDLE_TIMEOUT` between
messages and :data:`FRAME_TIMEOUT` for the rest of a started frame. Messages
are applied one at a time (a lock around :class:`wlmd.hl7.intake.Intake`:
the authoring module serialises writes to the area anyway). A frame over
``--hl7-max-size`` gets an AR and the connection is closed. One info line per
message: type, control ID, order control, outcome, duration; one at the end
of each connection. The TLS certificate and key and the ``--hl7-mapping``
rules are loaded when the options are parsed (:func:`check`), so a bad one
stops start-up with one line rather than the helper child at every restart.
The ACKs remembered across restarts are in ``<area>/.hl7-acks``
(:mod:`wlmd.hl7.journal`).
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import socket
import ssl
import threading
from collections.abc import Callable

from wlmd.authoring.editor import AreaEditor
from wlmd.authoring.files import unwritable_reason
from wlmd.hl7 import ack, mllp
from wlmd.hl7.intake import _NO_HEADER, REMEMBERED, Intake
from wlmd.hl7.journal import Journal
from wlmd.hl7.mapping import MappingError, Rule, parse_rules
from wlmd.hl7.message import DATA_TYPE_ERROR, Header, Hl7Error, read_header
from wlmd.services.quietpart import QuietPart
from wlmd.settings.config import Config

LOG = logging.getLogger("wlmd.hl7")
MAX_CONNECTIONS = 64
IDLE_TIMEOUT = 300.0
FRAME_TIMEOUT = 30.0
SERVICE_NAME = "hl7 listener"


class Hl7SettingsError(Exception):
    """An HL7 setting that cannot be used; ``str()`` is the one line start-up stops with."""


def check(config: Config) -> None:
    """Load what the listener will use, at option parsing: a bad certificate, key or
    mapping file stops start-up with one line, not the helper child at each restart."""
    if config.hl7_port:
        server_context(config)
        read_rules(config)


def server_context(config: Config) -> ssl.SSLContext | None:
    """The TLS context of ``--hl7-tls-cert``/``--hl7-tls-key``, None without a certificate."""
    cert = config.hl7_tls_cert
    if not cert:
        if config.hl7_tls_key:
            raise Hl7SettingsError("--hl7-tls-key only allowed with --hl7-tls-cert")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # BCP 195, as the DICOM port
    try:
        context.load_cert_chain(cert, config.hl7_tls_key or None)
    except (OSError, ssl.SSLError) as exc:
        key = f" with --hl7-tls-key {config.hl7_tls_key}" if config.hl7_tls_key else ""
        raise Hl7SettingsError(
            f"--hl7-tls-cert {cert}{key}: cannot use the certificate and key: {_reason(exc)}"
        ) from None
    return context


def read_rules(config: Config) -> dict[str, Rule] | None:
    """The site's ``--hl7-mapping`` rules, None without one."""
    if not config.hl7_mapping:
        return None
    try:
        with open(config.hl7_mapping, encoding="utf-8") as f:
            return parse_rules(f.read(), config.hl7_mapping)
    except (OSError, UnicodeError) as exc:
        raise Hl7SettingsError(f"bad --hl7-mapping {config.hl7_mapping}: {exc}") from None
    except MappingError as exc:
        raise Hl7SettingsError(f"bad --hl7-mapping: {exc}") from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        if exc.reason:
            return str(exc.reason).replace("_", " ").lower()
        return "not a PEM certificate and unencrypted private key"  # OpenSSL's "PEM lib"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


class Hl7Data(QuietPart):
    """The catalogue part of HL7 intake: the listening socket and the helper child."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sock: socket.socket | None = None
        self.rules = read_rules(config)
        self.tls = server_context(config)

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        area = os.path.join(self.config.data_files_path, self.config.hl7_area)
        if not os.path.isfile(os.path.join(area, "lockfile")):
            raise OSError(
                f"--hl7-area {self.config.hl7_area}: no storage area {area} (with a lockfile)"
            )
        if (why := unwritable_reason(area)) is not None:
            raise OSError(f"--hl7-port: orders cannot be written to {area}: {why}")
        address = self.config.hl7_listen_address or "127.0.0.1"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, self.config.hl7_port or 0))
        except OSError as exc:
            sock.close()
            raise OSError(
                exc.errno, f"HL7 port {address}:{self.config.hl7_port}: {exc.strerror}"
            ) from None
        sock.listen(128)
        self.sock = sock

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        return [(SERVICE_NAME, lambda: run_listener(self))]

    def in_child(self, for_child: object) -> None:
        """A worker does not need the HL7 socket."""
        if self.sock is not None:
            self.sock.close()


def run_listener(data: Hl7Data) -> int:
    """The helper child's body: accept until SIGTERM; returns the exit status."""
    config = data.config
    assert data.sock is not None, "preload binds the socket"
    listener = data.sock
    editor = AreaEditor(
        config.data_files_path,
        config.hl7_area,
        float(config.lock_timeout) if config.lock_timeout else 30.0,
    )
    journal = Journal.in_area(editor.path, REMEMBERED)
    intake = Intake(editor, data.rules, dict(config.hl7_station_defaults), journal)
    lock = threading.Lock()
    slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
    tls = data.tls
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda _s, _f: stopping.set())
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)
    LOG.info(
        "HL7 listener on %s:%d, orders to storage area %s",
        *listener.getsockname()[:2],
        config.hl7_area,
    )
    while not stopping.is_set():
        for key, _ in selector.select():
            if key.fileobj == wake_r:
                os.read(wake_r, 512)
                continue
            try:
                conn, peer = listener.accept()
            except OSError:
                continue
            if not slots.acquire(blocking=False):
                LOG.warning(
                    "HL7 connection from %s refused: %d connections open", peer[0], MAX_CONNECTIONS
                )
                conn.close()
                continue
            worker = threading.Thread(
                target=_serve, daemon=True, args=(conn, peer, intake, lock, slots, tls, config)
            )
            worker.start()
    listener.close()
    return 0


def _serve(
    conn: socket.socket,
    peer: tuple[str, int],
    intake: Intake,
    lock: threading.Lock,
    slots: threading.BoundedSemaphore,
    tls: ssl.SSLContext | None,
    config: Config,
) -> None:
    where = f"{peer[0]}:{peer[1]}"
    try:
        conn.settimeout(FRAME_TIMEOUT)
        if tls is not None:
            try:
                conn = tls.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError) as exc:  # a plain MLLP sender on the TLS port
                LOG.warning(
                    "HL7 connection from %s closed: TLS handshake failed (%s)", where, _reason(exc)
                )
                return
        _converse(conn, where, intake, lock, config.hl7_max_size)
    except (OSError, ssl.SSLError) as exc:
        LOG.info("HL7 connection from %s ended: %s", where, exc)
    finally:
        conn.close()
        slots.release()


def _converse(
    conn: socket.socket, where: str, intake: Intake, lock: threading.Lock, max_size: int
) -> None:
    decoder = mllp.Decoder(max_size)
    messages = 0
    while True:
        conn.settimeout(FRAME_TIMEOUT if decoder.pending else IDLE_TIMEOUT)
        try:
            data = conn.recv(65536)
        except TimeoutError:
            _report(decoder.close(), where)
            LOG.info("HL7 connection from %s closed: no data for %g s", where, conn.gettimeout())
            return
        events = decoder.feed(data) if data else decoder.close()
        for event in events:
            if isinstance(event, mllp.Frame):
                with lock:
                    outcome = intake.handle(event.payload)
                conn.sendall(mllp.frame(outcome.ack))
                messages += 1
                LOG.info(
                    "HL7 %s %s from %s: order control %s, %s%s%s (%.3f s)",
                    outcome.message_type,
                    outcome.control_id or "(no control ID)",
                    where,
                    outcome.order_control or "-",
                    outcome.code,
                    " (repeated: same ACK)" if outcome.repeated else "",
                    f": {outcome.reason}" if outcome.reason else "",
                    outcome.duration,
                )
            elif isinstance(event, mllp.TooLarge):
                header = _header_or_none(decoder)
                error = Hl7Error(
                    "AR",
                    DATA_TYPE_ERROR,
                    "",
                    (f"message larger than {event.limit} bytes (--hl7-max-size): not read"),
                )
                conn.sendall(mllp.frame(ack.build(header, "AR", error).encode("ascii", "replace")))
                LOG.warning(
                    "HL7 message from %s refused: over %d bytes; connection closed",
                    where,
                    event.limit,
                )
                return
            else:
                _report([event], where)
        if not data:
            LOG.info(
                "HL7 connection from %s closed by the sender after %d message(s)", where, messages
            )
            return


def _header_or_none(decoder: mllp.Decoder) -> Header:
    try:
        return read_header(bytes(decoder._body[:4096]))
    except Hl7Error:
        return _NO_HEADER


def _report(events: list[mllp.Event], where: str) -> None:
    for event in events:
        if isinstance(event, mllp.Discarded):
            LOG.warning("HL7 from %s: %d bytes outside MLLP frames discarded", where, event.count)
        elif isinstance(event, mllp.Incomplete):
            LOG.warning(
                "HL7 from %s: a message of %d bytes without end block (0x1C 0x0D) not applied",
                where,
                event.size,
            )
