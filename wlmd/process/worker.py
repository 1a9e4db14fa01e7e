"""One association, served in the current process (a forked worker or --single-process).

This is where the process meets the association layer: the first-byte check
and the TLS handshake on the accepted connection, the association policy
(:mod:`wlmd.association.policy`: --refuse, --reject, storage areas, --allowed-callers)
as the admission hook, the services offered (:mod:`wlmd.services`: echo and
Modality Worklist), the graceful stop on SIGTERM, and the one info line per
association. The upper layer itself runs in :mod:`wlmd.association`.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import signal
import socket
import ssl
import threading
import time

from pydicom.uid import (
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from wlmd import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from wlmd.association import policy, runtime
from wlmd.association.dimse import Service
from wlmd.association.link import Link
from wlmd.association.logtext import association_prefix, describe_context
from wlmd.association.negotiation import AcceptorIdentity, AssociateRequest, Negotiated
from wlmd.association.peers import format_peer
from wlmd.association.report import AssociationLog
from wlmd.association.tls import describe_peer
from wlmd.association.wire import first_byte_problem
from wlmd.process.logsetup import set_association_id
from wlmd.process.proctitle import set_title
from wlmd.services.callers import CallerList
from wlmd.services.routing import Offer, Router, unknown_title_reason
from wlmd.settings.config import Config, PreferredSyntax

LOG = logging.getLogger("wlmd.worker")


#: Accepted transfer syntaxes, most preferred first (as wlmscpfs's +x options).
_PREFERENCES = {
    PreferredSyntax.UNCOMPRESSED: [
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ImplicitVRLittleEndian,
    ],
    PreferredSyntax.LITTLE: [ExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian],
    PreferredSyntax.BIG: [ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian],
    PreferredSyntax.DEFLATED: [
        DeflatedExplicitVRLittleEndian,
        ExplicitVRLittleEndian,
        ExplicitVRBigEndian,
        ImplicitVRLittleEndian,
    ],
    PreferredSyntax.IMPLICIT: [ImplicitVRLittleEndian],
}

#: drawn once per process start; forked workers and -s inherit it
_ASSOCIATION_PREFIX = association_prefix(time.time())
_association_ids = itertools.count(1)

#: How long a forked worker's association may go on after SIGTERM (the
#: supervisor is stopping, or died: PR_SET_PDEATHSIG) before wlmd aborts it.
GRACEFUL_TIMEOUT = runtime.GRACEFUL_TIMEOUT
_stop_requested = threading.Event()
#: written by request_stop() so that a worker blocked waiting for its peer wakes up
_stop_pipe: tuple[int, int] | None = None


def request_stop(_signum: int = 0, _frame: object = None) -> None:
    """SIGTERM handler of a forked worker: finish the association, within GRACEFUL_TIMEOUT.

    A modality in the middle of a query gets its answer and its release
    even if the supervisor is restarted or has crashed; one that stays
    associated longer gets an A-ABORT instead of a cut connection.
    """
    _stop_requested.set()
    if _stop_pipe is not None:
        with contextlib.suppress(OSError):
            os.write(_stop_pipe[1], b"!")


def stop_requested() -> bool:
    """Whether this worker got SIGTERM (it serves no further association)."""
    return _stop_requested.is_set()


def stop_fd() -> int:
    """The descriptor request_stop() makes readable (created on first use)."""
    global _stop_pipe
    if _stop_pipe is None:
        _stop_pipe = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    return _stop_pipe[0]


def settings(config: Config) -> runtime.Settings:
    """Timeouts, -pdu, our identity and transfer syntax preference for the association layer."""
    return runtime.Settings(
        acse_timeout=float(config.acse_timeout),
        dimse_timeout=None if config.dimse_timeout is None else float(config.dimse_timeout),
        identity=AcceptorIdentity(
            IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME, config.max_pdu
        ),
        transfer_syntaxes=_PREFERENCES[config.preferred_syntax],
    )


class WorkerHooks(runtime.Hooks):
    """The association policy, the operator's log lines and the stop request."""

    def __init__(
        self,
        config: Config,
        router: Router,
        log: AssociationLog,
        callers: CallerList | None = None,
    ) -> None:
        self.config = config
        self.router = router
        self.log = log
        self.callers = callers
        self.offer: Offer | None = None
        self._supervisor = os.getppid()

    def admit(self, request: AssociateRequest) -> runtime.Rejection | None:
        """Apply the association policy before negotiating (wlmscpfs's order)."""
        self.log.calling = request.calling_ae_title
        self.log.called = request.called_ae_title
        self.log.title("negotiating")
        self.offer = self.router.offer(self.log.called)
        rejection = policy.check_association(
            refuse=self.config.refuse,
            reject_without_implementation_uid=self.config.reject,
            application_context=request.application_context,
            implementation_class_uid=request.implementation_class_uid,
            called_ae_known=self.offer.known,
            caller_allowed=self.callers is None
            or self.callers.allows(self.log.called, self.log.calling),
        )
        if rejection is None:
            return None
        self.log.outcome = f"rejected: {self._why(rejection)}"
        if rejection is not policy.REFUSED:  # --refuse is the operator's own choice
            self.log.level = logging.WARNING
        return runtime.Rejection(rejection.result, rejection.source, rejection.reason)

    def services(self, request: AssociateRequest) -> list[Service] | None:
        """The services the called AE title offers (:mod:`wlmd.services.routing`)."""
        return None if self.offer is None else self.router.services(self.offer, self.log)

    def _why(self, rejection: policy.Rejection) -> str:
        if rejection is policy.UNKNOWN_CALLED_AE:
            return unknown_title_reason(self.log.called, self.config.data_files_path, self.router)
        if rejection is policy.CALLER_NOT_ALLOWED:
            return (
                f"calling AE title {self.log.calling!r} may not query this storage area "
                "(--allowed-callers)"
            )
        return rejection.why

    def established(self, request: AssociateRequest, negotiated: Negotiated) -> None:
        self.log.title("idle")
        self._log_refused_contexts(request, negotiated)

    def _log_refused_contexts(self, request: AssociateRequest, negotiated: Negotiated) -> None:
        """Say which proposed presentation contexts were refused (PS3.8 9.3.3.2 results).

        Each refused one at debug; when none was accepted, one warning naming
        them all: the modality will abort, and "aborted, 0 queries" alone would
        not tell the operator that it proposed a SOP class or transfer syntax
        wlmd does not serve.
        """
        if not negotiated.refused:
            return
        proposed = {cx.context_id: cx for cx in request.contexts}
        described = []
        for cx in negotiated.refused:
            asked = proposed.get(cx.context_id, cx)
            text = describe_context(
                str(cx.abstract_syntax or ""),
                [str(ts) for ts in asked.transfer_syntax],
                cx.result,
            )
            LOG.debug("presentation context %s refused: %s", cx.context_id, text)
            described.append(text)
        if not negotiated.accepted:
            self.log.note = "no presentation context accepted"
            self.log.level = logging.WARNING
            LOG.warning(
                "association %s -> %s from %s: no presentation context accepted; refused: %s",
                self.log.calling,
                self.log.called,
                self.log.peer,
                "; ".join(described),
            )

    def stop_requested(self) -> bool:
        return _stop_requested.is_set()

    def stopping(self) -> None:
        why = "the supervisor is gone" if os.getppid() != self._supervisor else "SIGTERM"
        LOG.info(
            "stop requested (%s): association %s -> %s from %s may finish within %g s",
            why,
            self.log.calling,
            self.log.called,
            self.log.peer,
            GRACEFUL_TIMEOUT,
        )

    def stop_expired(self) -> None:
        LOG.warning(
            "association %s -> %s from %s still running %g s after the stop request: aborted",
            self.log.calling,
            self.log.called,
            self.log.peer,
            GRACEFUL_TIMEOUT,
        )


#: After SIGTERM, how long a connection that has sent nothing yet may still take to
#: start its association: a modality sends its A-ASSOCIATE-RQ right after
#: connecting, so one that connected just before a restart is still served, while a
#: silent peer no longer holds the worker (and the restart) for the whole -ta.
SILENT_STOP_GRACE = 2.0


def _wait_for_first_byte(conn: socket.socket, timeout: float, stop: int | None) -> str | None:
    """Wait until ``conn`` is readable; why not (timed out), or None."""
    deadline = time.monotonic() + timeout
    watched: list[socket.socket | int] = [conn] if stop is None else [conn, stop]
    stopping = False
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select(watched, [], [], left)
        if conn in ready:
            return None
        if stop is not None and stop in ready:
            watched = [conn]  # the stop pipe stays readable: act on it once
            stopping = True
            deadline = min(deadline, time.monotonic() + SILENT_STOP_GRACE)
    if stopping:
        return (
            f"no association request within {SILENT_STOP_GRACE:g} s of the stop request"
            " (SIGTERM), closed"
        )
    return f"no association request within {timeout:g} s (-ta), closed"


def _wait_for_request(
    conn: socket.socket, timeout: float, check_pdu_type: bool = True, stop: int | None = None
) -> tuple[str | None, int]:
    """Wait (up to -ta) for the peer's first byte; why not to go on (and the level), or None.

    A peer that connects and closes (port probes, health checks) or stays
    silent is noticed here, before anything else is set up; in single-process
    mode it would otherwise block every other modality meanwhile. With
    ``check_pdu_type`` (not under TLS, whose first byte is the handshake's)
    a first byte that cannot start an A-ASSOCIATE-RQ ends the connection too,
    with a warning: something that is not a DICOM modality talks to the port.
    ``stop`` (a forked worker's stop pipe) shortens the wait to
    SILENT_STOP_GRACE once SIGTERM came.
    """
    silent = _wait_for_first_byte(conn, timeout, stop)
    if silent:
        return silent, logging.INFO
    try:
        first = conn.recv(1, socket.MSG_PEEK)
    except OSError as exc:
        return (
            f"connection failed before the association request: {exc.strerror}",
            logging.INFO,
        )
    if not first:
        return "closed by the peer before sending an association request", logging.INFO
    problem = first_byte_problem(first[0]) if check_pdu_type else None
    if problem:
        return problem, logging.WARNING
    return None, logging.INFO


def _drain_and_close(conn: socket.socket) -> None:
    """Close after reading what already arrived (at most 64 KiB, without waiting).

    Closing a socket with unread data sends a TCP reset, and a client (an HTTP
    health check, say) then reports "connection reset" instead of a clean end.
    """
    with contextlib.suppress(OSError):
        conn.recv(65536, socket.MSG_DONTWAIT)
    conn.close()


def next_association_id() -> str:
    """A new association tag ("a1kq2x9.17"). The supervisor draws it before forking,
    so that tags are unique across workers, not ".1" in every worker process; the
    prefix (:func:`association_prefix`) makes them unique across restarts."""
    return f"{_ASSOCIATION_PREFIX}.{next(_association_ids)}"


def serve_association(
    conn: socket.socket,
    peer: tuple[str, int],
    config: Config,
    router: Router,
    ident: str | None = None,
    callers: CallerList | None = None,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Serve one accepted TCP connection until the association ends."""
    ident = ident or next_association_id()
    set_association_id(ident)
    log = AssociationLog(ident=ident, peer=format_peer(*peer), show_title=set_title)
    early, level = _wait_for_request(
        conn,
        config.acse_timeout,
        check_pdu_type=tls is None,
        stop=stop_fd() if _in_worker() else None,
    )
    if early:
        LOG.log(level, "connection from %s: %s", log.peer, early)
        _drain_and_close(conn)
        set_association_id(None)
        return
    if tls is not None:
        conn.settimeout(config.acse_timeout)
        try:  # the handshake is bounded by the ACSE timeout, like the request
            conn = tls.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            LOG.warning("connection from %s: TLS handshake failed: %s", log.peer, exc)
            with contextlib.suppress(OSError):
                conn.close()
            set_association_id(None)
            return
        LOG.info("connection from %s: %s", log.peer, describe_peer(conn))
    hooks = WorkerHooks(config, router, log, callers)
    try:
        link = Link(conn, stop_fd=stop_fd() if _in_worker() else None)
        session = runtime.serve(link, [], settings(config), hooks)
        if not log.outcome.startswith("rejected"):
            log.outcome = session.outcome
    finally:
        with contextlib.suppress(OSError):
            conn.close()
        LOG.log(
            log.level,
            "association %s -> %s from %s: %s, %d quer%s, %.3f s",
            log.calling,
            log.called,
            log.peer,
            f"{log.outcome} ({log.note})" if log.note else log.outcome,
            log.queries,
            "y" if log.queries == 1 else "ies",
            time.monotonic() - log.started,
        )
        set_association_id(None)


def _in_worker() -> bool:
    """Whether SIGTERM is ours (a forked worker), not the supervisor's (--single-process)."""
    return signal.getsignal(signal.SIGTERM) is request_stop
