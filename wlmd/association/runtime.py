"""One association, start to end, in one thread (PS3.8 9.2 acceptor states, simplified).

A worker (a spare or a fresh fork) serves one association at a time, so the upper layer runs as a
plain loop: read the A-ASSOCIATE-RQ, ask the admission hook, negotiate,
answer each DIMSE request by the service registered for it, until
A-RELEASE, A-ABORT, a closed connection, the DIMSE timeout or a stop
request. pynetdicom ran two threads per association that polled each other
(1 ms sleeps, 10 ms steps when stopping): 60-70 % of a poll cycle.

What the loop does at each point, and why:

* first PDU within the ACSE timeout (ARTIM, PS3.8 9.1.5), read with the
  bounds of :mod:`wlmd.association.link`; anything but an A-ASSOCIATE-RQ
  there was refused earlier (:func:`wlmd.association.wire.first_byte_problem`);
* a rejection from the admission hook is sent as A-ASSOCIATE-RJ and the
  connection closed (AE-8);
* while established: P-DATA-TF is joined into DIMSE messages; A-RELEASE-RQ
  is answered with A-RELEASE-RP (AR-2/AR-4); A-ABORT ends it (AA-3); any
  other PDU, or one that does not decode, is answered with A-ABORT from the
  service provider (AA-8) and logged as one warning;
* nothing for the DIMSE timeout (-td): aborted, as pynetdicom's network
  timeout did;
* a stop request (SIGTERM: supervisor stopping or gone) lets the association
  go on for :data:`GRACEFUL_TIMEOUT` seconds, then aborts it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from wlmd.association import wire
from wlmd.association.dimse import (
    Message,
    MessageAssembler,
    ProtocolError,
    Request,
    Responder,
    Service,
)
from wlmd.association.link import Link, LinkError, LinkTimeout, PduTooLong, PeerClosed
from wlmd.association.negotiation import (
    AcceptorIdentity,
    AssociateRequest,
    Negotiated,
    decode_request,
    negotiate,
)

LOG = logging.getLogger("wlmd.worker")

#: How long an association may go on after a stop request before it is aborted.
GRACEFUL_TIMEOUT = 10.0


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ: result, source and reason (PS3.8 9.3.4)."""

    result: int
    source: int
    reason: int


@dataclass(frozen=True)
class Settings:
    """Timeouts, limits and what we say about ourselves."""

    acse_timeout: float
    #: None: wait for the next request as long as the peer likes (-td unset)
    dimse_timeout: float | None
    identity: AcceptorIdentity
    #: our transfer syntaxes, most preferred first
    transfer_syntaxes: Sequence[str]


class Hooks:
    """What the process around the association is told, and asked (override as needed)."""

    def admit(self, request: AssociateRequest) -> Rejection | None:
        """None to negotiate, or the rejection to send."""
        return None

    def services(self, request: AssociateRequest) -> Sequence[Service] | None:
        """The services to negotiate for an admitted request (by its called AE title),
        or None for those :func:`serve` was given."""
        return None

    def established(self, request: AssociateRequest, negotiated: Negotiated) -> None:
        """The A-ASSOCIATE-AC is about to be sent."""

    def stop_requested(self) -> bool:
        """Whether the process was asked to stop (checked when ``stop_fd`` wakes us)."""
        return False

    def stopping(self) -> None:
        """The grace period starts (log it)."""

    def stop_expired(self) -> None:
        """The grace period is over: the association is aborted (log it)."""


class Session:
    """The state of one association while it runs."""

    def __init__(
        self,
        link: Link,
        services: Sequence[Service],
        settings: Settings,
        hooks: Hooks,
    ) -> None:
        self.link = link
        self.settings = settings
        self.hooks = hooks
        self.services = services
        self._by_syntax = {uid: s for s in services for uid in s.abstract_syntaxes}
        self.is_established = False
        self.outcome = "closed"
        self.request: AssociateRequest | None = None
        self.negotiated: Negotiated | None = None
        self._assembler = MessageAssembler()
        #: messages that arrived while a request was being answered
        self._queued: list[Message] = []
        self._stop_deadline: float | None = None

    # --- timing -----------------------------------------------------------------------
    def _timeout(self, default: float) -> float:
        if self._stop_deadline is None:
            return default
        return max(0.0, min(default, self._stop_deadline - time.monotonic()))

    def _wait(self, timeout: float | None) -> str:
        """Wait for the peer: "data", "timeout" or "expired" (grace period over)."""
        deadline = time.monotonic() + timeout if timeout is not None else float("inf")
        while True:
            remaining: float | None = deadline - time.monotonic()
            if timeout is None and self._stop_deadline is None:
                remaining = None
            if self._stop_deadline is not None:
                if time.monotonic() >= self._stop_deadline:
                    return "expired"
                remaining = self._stop_deadline - time.monotonic()
                if timeout is not None:
                    remaining = min(remaining, deadline - time.monotonic())
            woke = self.link.wait(None if remaining is None else max(0.0, remaining))
            if woke == "data":
                return "data"
            if woke == "stop":
                self._drain_stop_fd()
                if self._stop_deadline is None and self.hooks.stop_requested():
                    self._stop_deadline = time.monotonic() + GRACEFUL_TIMEOUT
                    self.hooks.stopping()
                continue
            if self._stop_deadline is not None and time.monotonic() >= self._stop_deadline:
                return "expired"
            if time.monotonic() >= deadline:
                return "timeout"

    def _drain_stop_fd(self) -> None:
        if self.link.stop_fd is None:
            return
        with contextlib.suppress(OSError):  # readable: one read does not block
            os.read(self.link.stop_fd, 4096)

    # --- sending ----------------------------------------------------------------------
    def _send(self, data: bytes) -> bool:
        try:
            self.link.send(data, self.settings.dimse_timeout)
        except OSError:
            return False
        return True

    def abort(self, reason: int | None = None) -> None:
        """Send A-ABORT (from the service provider with ``reason``, else the user) and end."""
        if reason is None:
            self._send(wire.abort_pdu(wire.ABORT_SERVICE_USER))
        else:
            self._send(wire.abort_pdu(wire.ABORT_SERVICE_PROVIDER, reason))
        self.is_established = False

    # --- the association --------------------------------------------------------------
    def run(self) -> None:
        """Serve the association until it ends; ``outcome`` says how."""
        try:
            if self._associate():
                self._serve()
        except PduTooLong as exc:
            LOG.warning("%s: closing the connection", exc)
            self.is_established = False
            self.outcome = "aborted" if self.request else "closed"
        except PeerClosed:
            self.is_established = False
            if self.request is not None and self.outcome == "accepted":
                self.outcome = "aborted"

    def _associate(self) -> bool:
        settings = self.settings
        if self._wait(settings.acse_timeout) != "data":
            LOG.info("no association request within %g s (-ta), closed", settings.acse_timeout)
            return False
        try:
            kind, pdu = self.link.read_pdu(self._timeout(settings.acse_timeout))
        except LinkTimeout:
            LOG.info(
                "association request incomplete after %g s (-ta), closed", settings.acse_timeout
            )
            return False
        if kind != wire.A_ASSOCIATE_RQ:  # checked at the first byte; a TLS peer gets here
            LOG.warning("%s", wire.first_byte_problem(kind))
            return False
        try:
            request = decode_request(pdu)
        except Exception as exc:
            LOG.warning("Unable to decode A-ASSOCIATE-RQ: %s", exc or type(exc).__name__)
            self.abort(wire.ABORT_INVALID_PDU_PARAMETER)
            return False
        self.request = request
        rejection = self.hooks.admit(request)
        if rejection is not None:
            self._send(wire.associate_rj(rejection.result, rejection.source, rejection.reason))
            return False
        offered = self.hooks.services(request)
        if offered is not None:
            self.services = offered
            self._by_syntax = {uid: s for s in offered for uid in s.abstract_syntaxes}
        syntaxes = [uid for s in self.services for uid in s.abstract_syntaxes]
        self.negotiated = negotiate(
            request, syntaxes, settings.transfer_syntaxes, settings.identity
        )
        self.link.max_pdata = settings.identity.max_pdu
        self.outcome = "accepted"
        self.hooks.established(request, self.negotiated)
        if not self._send(self.negotiated.ac_pdu):
            self.outcome = "aborted"
            return False
        self.is_established = True
        return True

    def _serve(self) -> None:
        while self.is_established:
            if self._queued:
                self._dispatch(self._queued.pop(0))
                continue
            woke = self._wait(self.settings.dimse_timeout)
            if woke == "expired":
                self.hooks.stop_expired()
                self.abort()
                self.outcome = "aborted by wlmd (stopping)"
                return
            if woke == "timeout":
                LOG.warning(
                    "nothing received for %g s (-td): association aborted",
                    self.settings.dimse_timeout,
                )
                self.abort()
                self.outcome = "aborted (idle, -td)"
                return
            for message in self._read_messages(self._timeout(self.settings.acse_timeout)):
                if not self.is_established:
                    return
                self._dispatch(message)

    def _read_messages(self, timeout: float) -> list[Message]:
        """Read one PDU: the DIMSE messages it completes; acts on release and abort itself."""
        try:
            kind, pdu = self.link.read_pdu(timeout)
        except LinkTimeout:
            LOG.warning("PDU incomplete after %g s: association aborted", timeout)
            self.abort(wire.ABORT_REASON_NOT_SPECIFIED)
            self.outcome = "aborted"
            return []
        if kind == wire.P_DATA_TF:
            try:
                return self._assembler.add(pdu)
            except ProtocolError as exc:
                if "exceeds" not in str(exc):  # that one was logged with its limit
                    LOG.warning("%s: association aborted", exc)
                self.abort(wire.ABORT_INVALID_PDU_PARAMETER)
                self.outcome = "aborted"
                return []
        if kind == wire.A_RELEASE_RQ:
            self._send(wire.RELEASE_RP)
            self.is_established = False
            self.outcome = "released"
            return []
        if kind == wire.A_ABORT:
            self.is_established = False
            self.outcome = "aborted"
            return []
        name = wire.PDU_NAMES.get(kind, f"unknown PDU type 0x{kind:02X}")
        LOG.warning("%s received on an established association: aborted", name)
        unknown = kind not in wire.PDU_NAMES
        self.abort(wire.ABORT_UNRECOGNIZED_PDU if unknown else wire.ABORT_UNEXPECTED_PDU)
        self.outcome = "aborted"
        return []

    def read_waiting(self) -> list[int]:
        """While a request is answered: read what the peer sent meanwhile, never blocking.

        Returns the message IDs that C-CANCEL-RQs name (PS3.7 9.3.2.3); other
        requests are queued until the current one is answered.
        """
        cancels: list[int] = []
        try:
            while self.is_established and self.link.data_waiting():
                for message in self._read_messages(self.settings.acse_timeout):
                    if message.command_field == wire.C_CANCEL_RQ:
                        cancels.append(int(message.primitive.MessageIDBeingRespondedTo or 0))
                    else:
                        self._queued.append(message)
        except (PeerClosed, PduTooLong) as exc:
            if isinstance(exc, PduTooLong):
                LOG.warning("%s: closing the connection", exc)
            self.is_established = False
            self.outcome = "aborted"
        return cancels

    def _dispatch(self, received: Message) -> None:
        command = received.command_field
        message = received.primitive
        if command == wire.C_CANCEL_RQ:
            return  # for a request already answered (PS3.7 9.3.2.3: ignored)
        negotiated = self.negotiated
        assert negotiated is not None
        context = negotiated.accepted.get(received.context_id)
        if context is None:
            LOG.warning(
                "DIMSE message on presentation context %s, which was not accepted: aborted",
                received.context_id,
            )
            self.abort()
            self.outcome = "aborted"
            return
        if not message.is_valid_request:
            LOG.warning("unexpected %s message received: ignored", message.msg_type)
            return
        uid = str(getattr(message, "AffectedSOPClassUID", None) or "")
        service = self._by_syntax.get(uid) or self._by_syntax.get(context.abstract_syntax)
        handler = service.handlers.get(command) if service is not None else None
        if handler is None:
            # An operation this SOP class is not served for here (N-DELETE on a UPS
            # context, C-STORE on the worklist's): the standard's failure status
            # 0x0211 Unrecognized Operation (PS3.7 C.5.9), not a dropped association.
            LOG.warning(
                "%s for SOP class %s is not served here: answered 0x%04X (unrecognized operation)",
                message.msg_type,
                uid or context.abstract_syntax,
                wire.UNRECOGNIZED_OPERATION,
            )
            writer = wire.PDataWriter(self.link.sock, context.id, self.request_peer_max_pdu())
            writer.add(
                wire.response_command_set(
                    command | 0x8000,
                    uid or context.abstract_syntax,
                    int(getattr(message, "MessageID", 0) or 0),
                    wire.UNRECOGNIZED_OPERATION,
                ),
                is_command=True,
            )
            writer.flush()
            return
        request = Request(message, context, command)
        writer = wire.PDataWriter(self.link.sock, context.id, self.request_peer_max_pdu())
        responder = Responder(self, request, writer)
        self.link.sock.settimeout(self.settings.dimse_timeout)
        try:
            handler(request, responder)
        except OSError:
            raise  # the connection failed: the caller ends the association
        except Exception:
            # A service's bug must cost one association, not the worker (and, for a
            # spare, the associations it would have served next): the peer sees an
            # A-ABORT at once instead of waiting for its DIMSE timeout.
            name = service.name if service is not None else "?"
            LOG.exception("%s: the %s service failed: association aborted", message.msg_type, name)
            self.abort()
            self.outcome = "aborted"

    def request_peer_max_pdu(self) -> int:
        return self.request.peer_max_pdu if self.request is not None else 0


def serve(
    link: Link,
    services: Sequence[Service],
    settings: Settings,
    hooks: Hooks,
    on_end: Callable[[Session], None] | None = None,
) -> Session:
    """Run one association on ``link``; returns the finished session."""
    session = Session(link, services, settings, hooks)
    try:
        session.run()
    except LinkError:
        session.is_established = False
    finally:
        if on_end is not None:
            on_end(session)
    return session
