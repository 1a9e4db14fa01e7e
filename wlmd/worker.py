"""One association, served in the current process (a forked worker or --single-process).

The network layer is thin: pynetdicom handles the upper layer protocol; the
handlers below apply the association policy, answer C-ECHO, and answer
C-FIND from :mod:`wlmd.worklist`. Pending responses are encoded by wlmd
itself (raw worklist bytes, no pydicom round trip) and sent straight to the
DIMSE provider; pynetdicom sends the final status.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.sop_class import (  # type: ignore[attr-defined]  # made at import time
    ModalityWorklistInformationFind,
    Verification,
)
from pynetdicom.transport import AddressInformation

from wlmd import __version__, policy
from wlmd.callers import CallerList
from wlmd.config import Config, PreferredSyntax
from wlmd.logsetup import set_association_id
from wlmd.logtext import association_prefix, describe_context, describe_tags
from wlmd.pdata import PDataWriter, pending_command_set
from wlmd.peers import format_peer, presentable_address
from wlmd.proctitle import set_title
from wlmd.requestlog import write_request_file
from wlmd.tls import describe_peer
from wlmd.transport import BoundedAssociationSocket, first_byte_problem
from wlmd.worklist import keys
from wlmd.worklist.encode import (
    DEFLATED_EXPLICIT_LITTLE,
    EXPLICIT_BIG,
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    encode_identifier,
)
from wlmd.worklist.match import MatchOptions
from wlmd.worklist.query import FindOptions, FindResult, run_find
from wlmd.worklist.store import WorklistStore

LOG = logging.getLogger("wlmd.worker")

IMPLEMENTATION_CLASS_UID = "2.25.272335116079396712994913927510549020011"
IMPLEMENTATION_VERSION_NAME = f"WLMD_{__version__}"[:16]

_ENCODINGS = {
    ImplicitVRLittleEndian: IMPLICIT_LITTLE,
    ExplicitVRLittleEndian: EXPLICIT_LITTLE,
    ExplicitVRBigEndian: EXPLICIT_BIG,
    DeflatedExplicitVRLittleEndian: DEFLATED_EXPLICIT_LITTLE,
}

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
GRACEFUL_TIMEOUT = 10.0
_stop_requested = threading.Event()


def request_stop(_signum: int = 0, _frame: object = None) -> None:
    """SIGTERM handler of a forked worker: finish the association, within GRACEFUL_TIMEOUT.

    A modality in the middle of a query gets its answer and its release
    even if the supervisor is restarted or has crashed; one that stays
    associated longer gets an A-ABORT instead of a cut connection.
    """
    _stop_requested.set()


def find_options(config: Config) -> FindOptions:
    return FindOptions(
        sq_expansion=config.sq_expansion,
        no_fail=config.no_fail,
        return_charset=config.return_charset,
        filter_issuer_aet=config.filter_issuer_aet,
        limit_answers=config.limit_answers,
        match=MatchOptions(
            case_insensitive_names=config.case_insensitive_names,
            wildcards_all_keys=config.wildcards_all_keys,
        ),
    )


def build_ae(config: Config) -> AE:
    """The pynetdicom application entity: contexts, limits and timeouts."""
    ae = AE(ae_title="WLMD")
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.maximum_pdu_size = config.max_pdu
    ae.acse_timeout = config.acse_timeout
    ae.dimse_timeout = config.dimse_timeout
    ae.network_timeout = config.dimse_timeout
    ae.require_called_aet = False
    ae.maximum_associations = 1_000_000  # the supervisor enforces --max-associations
    syntaxes = _PREFERENCES[config.preferred_syntax]
    ae.add_supported_context(Verification, syntaxes)
    ae.add_supported_context(ModalityWorklistInformationFind, syntaxes)
    return ae


@dataclass
class _AssociationLog:
    """What the one info line per association reports."""

    ident: str
    peer: str
    started: float = field(default_factory=time.monotonic)
    calling: str = "?"
    called: str = "?"
    queries: int = 0
    outcome: str = "closed"
    #: the association line's level: WARNING when a modality was turned away
    level: int = logging.INFO
    #: added to the outcome ("no presentation context accepted")
    note: str = ""


class AssociationHandler:
    """The event handlers of one association."""

    def __init__(
        self,
        config: Config,
        store: WorklistStore,
        log: _AssociationLog,
        callers: CallerList | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.log = log
        self.callers = callers
        self.options = find_options(config)
        self.preference = _PREFERENCES[config.preferred_syntax]

    def handlers(self) -> list[tuple[Any, Any]]:
        return [
            (evt.EVT_REQUESTED, self.on_requested),
            (evt.EVT_ACCEPTED, self.on_accepted),
            (evt.EVT_RELEASED, self.on_released),
            (evt.EVT_ABORTED, self.on_aborted),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_FIND, self.on_find),
        ]

    # --- association ----------------------------------------------------------------
    def on_requested(self, event: evt.Event) -> None:
        """Apply the association policy before pynetdicom negotiates."""
        assoc = event.assoc
        rq = assoc.requestor.primitive
        assert rq is not None  # the A-ASSOCIATE-RQ that raised EVT_REQUESTED
        self.log.calling = _ae(rq.calling_ae_title)
        self.log.called = _ae(rq.called_ae_title)
        self._title("negotiating")
        rejection = policy.check_association(
            refuse=self.config.refuse,
            reject_without_implementation_uid=self.config.reject,
            application_context=str(rq.application_context_name or ""),
            implementation_class_uid=str(rq.implementation_class_uid or ""),
            has_storage_area=self.store.area(self.log.called) is not None,
            caller_allowed=self.callers is None
            or self.callers.allows(self.log.called, self.log.calling),
        )
        if rejection is not None:
            self.log.outcome = f"rejected: {self._why(rejection)}"
            if rejection is not policy.REFUSED:  # --refuse is the operator's own choice
                self.log.level = logging.WARNING
            assoc.acse.send_reject(rejection.result, rejection.source, rejection.reason)
            assoc.kill()
            return
        assoc.acceptor.ae_title = self.log.called or "WLMD"
        # Our transfer syntax preference decides, as in wlmscpfs (pynetdicom would
        # otherwise take the requestor's order).
        for cx in rq.presentation_context_definition_list:
            cx.transfer_syntax.sort(key=self._rank)

    def _why(self, rejection: policy.Rejection) -> str:
        if rejection is policy.UNKNOWN_CALLED_AE:
            return (
                f"called AE title {self.log.called!r} has no storage area "
                f"in {self.config.data_files_path}"
            )
        if rejection is policy.CALLER_NOT_ALLOWED:
            return (
                f"calling AE title {self.log.calling!r} may not query this storage area "
                "(--allowed-callers)"
            )
        return rejection.why

    def _rank(self, uid: UID) -> int:
        return self.preference.index(uid) if uid in self.preference else len(self.preference)

    def _title(self, doing: str) -> None:
        set_title(f"worker {self.log.peer} {self.log.calling} -> {self.log.called}: {doing}")

    def on_accepted(self, event: evt.Event) -> None:
        self.log.outcome = "accepted"
        self._title("idle")
        self._log_refused_contexts(event.assoc)

    def _log_refused_contexts(self, assoc: Association) -> None:
        """Say which proposed presentation contexts were refused (PS3.8 9.3.3.2 results).

        Each refused one at debug; when none was accepted, one warning naming
        them all: the modality will abort, and "aborted, 0 queries" alone would
        not tell the operator that it proposed a SOP class or transfer syntax
        wlmd does not serve.
        """
        refused = assoc.rejected_contexts
        if not refused:
            return
        proposed = {cx.context_id: cx for cx in assoc.requestor.requested_contexts}
        described = []
        for cx in refused:
            asked = proposed.get(cx.context_id, cx)
            text = describe_context(
                str(cx.abstract_syntax or ""),
                [str(ts) for ts in asked.transfer_syntax],
                cx.result,
            )
            LOG.debug("presentation context %s refused: %s", cx.context_id, text)
            described.append(text)
        if not assoc.accepted_contexts:
            self.log.note = "no presentation context accepted"
            self.log.level = logging.WARNING
            LOG.warning(
                "association %s -> %s from %s: no presentation context accepted; refused: %s",
                self.log.calling,
                self.log.called,
                self.log.peer,
                "; ".join(described),
            )

    def on_released(self, event: evt.Event) -> None:
        self.log.outcome = "released"

    def on_aborted(self, event: evt.Event) -> None:
        self.log.outcome = "aborted"

    # --- services ---------------------------------------------------------------------
    def on_echo(self, event: evt.Event) -> int:
        LOG.info("C-ECHO from %s: success", self.log.calling)
        return 0x0000

    def on_find(self, event: evt.Event) -> Iterator[tuple[Any, Any]]:
        """Answer one C-FIND; yields only the final status (pendings are sent directly)."""
        started = time.monotonic()
        self.log.queries += 1
        self._title(f"C-FIND #{self.log.queries}")
        result = FindResult(keys.UNABLE_TO_PROCESS, error_comment="Internal error")
        sent = 0
        try:
            result, sent = self._answer(event)
        except Exception:
            LOG.exception("C-FIND failed with an internal error")
            result = FindResult(keys.UNABLE_TO_PROCESS, error_comment="Internal error")
        LOG.info(
            "C-FIND %s -> %s from %s: %d match%s, %d sent, status 0x%04X%s%s, %.1f ms",
            self.log.calling,
            self.log.called,
            self.log.peer,
            result.match_count,
            "" if result.match_count == 1 else "es",
            sent,
            result.final_status,
            f" ({result.error_comment})" if result.error_comment else "",
            f", offending {describe_tags(result.offending)}" if result.offending else "",
            (time.monotonic() - started) * 1000,
        )
        if self.config.sleep_during:
            time.sleep(self.config.sleep_during)
        yield _final_status(result), None
        if self.config.sleep_after:
            time.sleep(self.config.sleep_after)
        self._title("idle")

    def _answer(self, event: evt.Event) -> tuple[FindResult, int]:
        """Run the query and send the pending responses; returns (result, number sent)."""
        try:
            identifier = event.identifier  # element values stay raw until used
        except Exception as exc:
            LOG.warning("C-FIND identifier from %s cannot be decoded: %s", self.log.calling, exc)
            return FindResult(
                keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                error_comment="Identifier cannot be decoded",
            ), 0
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("C-FIND request identifier:\n%s", identifier)
        if self.config.request_file_path:
            write_request_file(
                self.config.request_file_path,
                self.config.request_file_format,
                identifier,
                self.log.calling,
                self.log.called,
            )
        if self.config.sleep_before:
            time.sleep(self.config.sleep_before)
        area = self.store.area(self.log.called)
        if area is None:
            LOG.error("storage area for %s disappeared", self.log.called)
            return FindResult(
                keys.OUT_OF_RESOURCES, error_comment="Storage area no longer exists"
            ), 0
        result = run_find(area, identifier, self.log.calling, self.options)
        return result, self._send_pendings(event, result)

    def _send_pendings(self, event: evt.Event, result: FindResult) -> int:
        """Send the pending C-FIND-RSPs ourselves, straight onto the association's socket.

        pynetdicom would build and encode a command set with pydicom for every
        response (~0.3 ms each: seconds for a match-all over 10,000 entries).
        The command set of a query's pending responses is the same every time,
        so it is encoded once, and the P-DATA-TF PDUs are written in batches.
        This is safe because nothing else is sent on the association while the
        handler runs; the final response then goes through pynetdicom.
        """
        context_id, _abstract, transfer_syntax = event.context
        encoding = _ENCODINGS.get(transfer_syntax, EXPLICIT_LITTLE)
        req = event.request
        assoc = event.assoc
        sock = assoc.dul.socket.socket if assoc.dul.socket is not None else None
        if sock is None:  # the peer closed the connection while we were matching
            LOG.info("C-FIND from %s: connection closed before the responses", self.log.calling)
            return 0
        writer = PDataWriter(sock, context_id, assoc.dimse.maximum_pdu_size)
        assert req.MessageID is not None  # pynetdicom decoded a C-FIND-RQ: type 1
        command = pending_command_set(
            str(req.AffectedSOPClassUID), req.MessageID, result.pending_status
        )
        sent = 0
        try:
            for response in result.responses:
                if event.is_cancelled:
                    result.final_status = keys.CANCEL
                    break
                if not assoc.is_established:
                    break
                if self.config.sleep_during:
                    writer.flush()
                    time.sleep(self.config.sleep_during)
                identifier = encode_identifier(response, encoding, self.config.compression_level)
                writer.add(command, is_command=True)
                writer.add(identifier, is_command=False)
                sent += 1
            writer.flush()
        except OSError as exc:
            LOG.warning("C-FIND responses to %s not sent: %s", self.log.calling, exc)
        if result.final_status == keys.CANCEL and sent < len(result.responses):
            LOG.info("C-FIND cancelled by %s after %d responses", self.log.calling, sent)
        return sent


def _final_status(result: FindResult) -> int | Dataset:
    if result.final_status in (keys.SUCCESS, keys.CANCEL):
        return result.final_status
    status = Dataset()
    status.Status = result.final_status
    if result.offending:
        status.OffendingElement = result.offending
    if result.error_comment:
        status.ErrorComment = result.error_comment
    return status


def _ae(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


def _wait_for_request(
    conn: socket.socket, timeout: float, check_pdu_type: bool = True
) -> tuple[str | None, int]:
    """Wait (up to -ta) for the peer's first byte; why not to go on (and the level), or None.

    pynetdicom notices neither a peer that connects and closes (port probes,
    health checks) nor a silent one until its whole ACSE timeout has passed;
    in single-process mode that would block every other modality meanwhile.
    With ``check_pdu_type`` (not under TLS, whose first byte is the handshake's)
    a first byte that cannot start an A-ASSOCIATE-RQ ends the connection too,
    with a warning: something that is not a DICOM modality talks to the port.
    """
    ready, _, _ = select.select([conn], [], [], timeout)
    if not ready:
        return f"no association request within {timeout:g} s (-ta), closed", logging.INFO
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


def _thread_failed(args: threading.ExceptHookArgs) -> None:
    """pynetdicom's reactor thread can die on a peer's malformed PDU: one line, not a traceback.

    The association is over either way (the connection is closed by the
    peer or by us); the traceback stays available at debug level.
    """
    name = args.thread.name if args.thread is not None else "?"
    LOG.warning(
        "association thread %s ended by %s: %s",
        name,
        args.exc_type.__name__,
        args.exc_value,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback)  # type: ignore[arg-type]
        if LOG.isEnabledFor(logging.DEBUG)
        else None,
    )


def _wait_until_done(assoc: Association, log: _AssociationLog) -> None:
    """Join the association; after a stop request give it GRACEFUL_TIMEOUT, then abort it."""
    supervisor = os.getppid()
    deadline: float | None = None
    while assoc.is_alive():
        now = time.monotonic()
        if deadline is None and _stop_requested.is_set():
            deadline = now + GRACEFUL_TIMEOUT
            why = "the supervisor is gone" if os.getppid() != supervisor else "SIGTERM"
            LOG.info(
                "stop requested (%s): association %s -> %s from %s may finish within %g s",
                why,
                log.calling,
                log.called,
                log.peer,
                GRACEFUL_TIMEOUT,
            )
        if deadline is not None and now >= deadline:
            LOG.warning(
                "association %s -> %s from %s still running %g s after the stop request: aborted",
                log.calling,
                log.called,
                log.peer,
                GRACEFUL_TIMEOUT,
            )
            assoc.abort()
            assoc.join(5.0)
            log.outcome = "aborted by wlmd (stopping)"
            return
        assoc.join(0.2 if deadline is None else min(0.2, deadline - now))


def serve_association(
    conn: socket.socket,
    peer: tuple[str, int],
    config: Config,
    store: WorklistStore,
    ident: str | None = None,
    callers: CallerList | None = None,
    tls: ssl.SSLContext | None = None,
) -> None:
    """Serve one accepted TCP connection until the association ends."""
    threading.excepthook = _thread_failed
    ident = ident or next_association_id()
    set_association_id(ident)
    log = _AssociationLog(ident=ident, peer=format_peer(*peer))
    early, level = _wait_for_request(conn, config.acse_timeout, check_pdu_type=tls is None)
    if early:
        LOG.log(level, "connection from %s: %s", log.peer, early)
        _drain_and_close(conn)
        set_association_id(None)
        return
    # A peer that stops mid-PDU must not hold a worker forever: pynetdicom reads
    # a PDU with blocking recv() once select() said "readable".
    conn.settimeout(config.acse_timeout)
    if tls is not None:
        try:  # the handshake is bounded by the ACSE timeout, like the request
            conn = tls.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            LOG.warning("connection from %s: TLS handshake failed: %s", log.peer, exc)
            with contextlib.suppress(OSError):
                conn.close()
            set_association_id(None)
            return
        LOG.info("connection from %s: %s", log.peer, describe_peer(conn))
    handler = AssociationHandler(config, store, log, callers)
    ae = build_ae(config)
    assoc = Association(ae, "acceptor")
    try:
        sock = BoundedAssociationSocket(assoc, client_socket=conn)
        sock.max_pdu = config.max_pdu
        assoc.set_socket(sock)
        assoc.acceptor.maximum_length = config.max_pdu
        assoc.acceptor.ae_title = "WLMD"
        assoc.acceptor.address_info = AddressInformation.from_tuple(conn.getsockname())
        assoc.acceptor.implementation_class_uid = UID(IMPLEMENTATION_CLASS_UID)
        assoc.acceptor.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        assoc.acceptor.supported_contexts = deepcopy(ae.supported_contexts)
        # as logged everywhere else: 10.1.2.3, not ::ffff:10.1.2.3 (pynetdicom's debug lines)
        assoc.requestor.address_info = AddressInformation.from_tuple(
            (presentable_address(peer[0]), peer[1])
        )
        for event, callback in handler.handlers():
            assoc.bind(event, callback)
        assoc.start()
        _wait_until_done(assoc, log)
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
