"""wlmd as an association *requestor*: one blocking association, no reactor threads.

The UPS event sender opens associations to its subscribers (PS3.4 CC.2.4),
up to one per subscriber at once. pynetdicom's requestor runs two threads per
association that poll each other every millisecond; fifty of them at once
took the sender's two cores (a fan-out to 50 subscribers needed 2.4 s, most
of it those loops). This requestor is the worker's upper layer the other way
round: plain blocking calls on one socket, each bounded (connect, the
A-ASSOCIATE-AC, each response, the A-RELEASE-RP), PDUs read whole by
:class:`~wlmd.association.link.Link` with its size bounds, fragments written
by :class:`~wlmd.association.wire.PDataWriter`, responses joined by
:class:`~wlmd.association.dimse.MessageAssembler`; the PDUs and DIMSE
messages themselves are pynetdicom's codecs. No service logic: what is
proposed and sent is the caller's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.uid import UID
from pynetdicom import dimse_messages
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RJ, A_ASSOCIATE_RQ
from pynetdicom.pdu import P_DATA_TF as P_DATA_TF_PDU
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import build_context

from wlmd.association import wire
from wlmd.association.dimse import Context, MessageAssembler, ProtocolError
from wlmd.association.link import Link, LinkError, LinkTimeout
from wlmd.association.wire import A_ABORT, A_RELEASE_RP, ABORT_SERVICE_USER, P_DATA_TF, abort_pdu

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
RELEASE_RQ = bytes.fromhex("05000000000400000000")
#: the longest P-DATA-TF body we accept in responses (PS3.8 D.1)
MAX_PDU = 65536


class AssociationFailed(Exception):
    """No association, or it ended; ``str()`` says why, for the log."""


@dataclass(frozen=True)
class Proposal:
    """What to ask for: contexts (abstract syntax -> transfer syntaxes) and roles."""

    calling_ae: str
    called_ae: str
    contexts: Sequence[tuple[str, Sequence[str]]]
    #: SOP class -> (SCU role, SCP role) for SCP/SCU Role Selection (PS3.7 D.3.3.4)
    roles: dict[str, tuple[bool, bool]]
    implementation_class_uid: str
    implementation_version_name: str


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    acse: float = 5.0
    dimse: float = 5.0


class Requestor:
    """An established association; ``accepted`` maps abstract syntax -> context."""

    def __init__(
        self, link: Link, accepted: dict[str, Context], peer_max_pdu: int, timeouts: Timeouts
    ) -> None:
        self.link = link
        self.accepted = accepted
        self.peer_max_pdu = peer_max_pdu
        self.timeouts = timeouts
        self.open = True

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        proposal: Proposal,
        timeouts: Timeouts,
        tls: ssl.SSLContext | None = None,
    ) -> Requestor:
        try:
            sock = socket.create_connection((host, port), timeout=timeouts.connect)
        except OSError as exc:
            raise AssociationFailed(f"cannot connect: {_reason(exc)}") from None
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=host)
            link = Link(sock)
            link.max_pdata = MAX_PDU
            contexts = _contexts(proposal)
            link.send(_associate_rq(proposal, contexts), timeouts.acse)
            kind, pdu = link.read_pdu(timeouts.acse)
            if kind == wire.A_ASSOCIATE_RJ:
                rj = A_ASSOCIATE_RJ()
                rj.decode(pdu)
                raise AssociationFailed(
                    f"association rejected (result {rj.result}, source {rj.source},"
                    f" reason {rj.reason_diagnostic})"
                )
            if kind != wire.A_ASSOCIATE_AC:
                raise AssociationFailed(f"PDU type 0x{kind:02X} instead of A-ASSOCIATE-AC")
            ac = A_ASSOCIATE_AC()
            ac.decode(pdu)
            primitive = ac.to_primitive()
        except AssociationFailed:
            sock.close()
            raise
        except LinkTimeout:
            sock.close()
            raise AssociationFailed(
                f"no answer to the A-ASSOCIATE-RQ within {timeouts.acse:g} s"
            ) from None
        except (OSError, LinkError, ValueError) as exc:  # ssl.SSLError is an OSError
            sock.close()
            raise AssociationFailed(f"no association: {_reason(exc)}") from None
        proposed = {int(cx.context_id or 0): str(cx.abstract_syntax) for cx in contexts}
        accepted: dict[str, Context] = {}
        for cx in primitive.presentation_context_definition_results_list:
            number = int(cx.context_id or 0)
            if cx.result == 0 and number in proposed and cx.transfer_syntax:
                syntax = proposed[number]
                accepted.setdefault(syntax, Context(number, syntax, str(cx.transfer_syntax[0])))
        peer_max = 0
        for item in primitive.user_information:
            if isinstance(item, MaximumLengthNotification):
                peer_max = int(item.maximum_length_received or 0)
        return cls(link, accepted, peer_max, timeouts)

    def request(self, context: Context, primitive: Any) -> Any:
        """Send a DIMSE request on ``context``; its response primitive (AssociationFailed:
        no answer within the DIMSE timeout, an abort, or garbage, and the association is gone)."""
        message = getattr(dimse_messages, f"{type(primitive).__name__}_RQ")()
        message.primitive_to_message(primitive)
        try:
            pdus = b"".join(
                bytes(P_DATA_TF_PDU(p_data).encode())
                for p_data in message.encode_msg(context.id, self.peer_max_pdu)
            )
            self.link.send(pdus, self.timeouts.dimse)
            assembler = MessageAssembler()
            for _ in range(10_000):
                kind, pdu = self.link.read_pdu(self.timeouts.dimse)
                if kind != P_DATA_TF:
                    raise AssociationFailed(
                        "aborted by the peer" if kind == A_ABORT else f"PDU type 0x{kind:02X}"
                    )
                done = assembler.add(pdu)
                if done:
                    return done[0].primitive
            raise AssociationFailed("no complete response in 10,000 PDUs")
        except AssociationFailed:
            self.abort()
            raise
        except LinkTimeout:
            self.abort()
            raise AssociationFailed(f"no response within {self.timeouts.dimse:g} s") from None
        except (OSError, LinkError, ProtocolError) as exc:
            self.abort()
            raise AssociationFailed(f"no answer: {_reason(exc)}") from None

    def release(self) -> None:
        """A-RELEASE-RQ, then wait for the A-RELEASE-RP (bounded); close either way."""
        if not self.open:
            return
        try:
            self.link.send(RELEASE_RQ, self.timeouts.acse)
            for _ in range(100):  # P-DATA of a late response may come first
                kind, _pdu = self.link.read_pdu(self.timeouts.acse)
                if kind in (A_RELEASE_RP, A_ABORT):
                    break
        except (OSError, LinkError):
            pass  # the peer went away: the association is over all the same
        self._close()

    def abort(self) -> None:
        if not self.open:
            return
        with contextlib.suppress(OSError):
            self.link.send(abort_pdu(ABORT_SERVICE_USER), 1.0)
        self._close()

    def _close(self) -> None:
        self.open = False
        with contextlib.suppress(OSError):
            self.link.sock.close()


def _contexts(proposal: Proposal) -> list[Any]:
    contexts = []
    for number, (uid, syntaxes) in enumerate(proposal.contexts):
        cx = build_context(uid, list(syntaxes))
        cx.context_id = 2 * number + 1
        contexts.append(cx)
    return contexts


def _associate_rq(proposal: Proposal, contexts: list[Any]) -> bytes:
    rq = A_ASSOCIATE()
    rq.application_context_name = UID(APPLICATION_CONTEXT_NAME)
    rq.calling_ae_title = proposal.calling_ae
    rq.called_ae_title = proposal.called_ae
    rq.presentation_context_definition_list = contexts
    length = MaximumLengthNotification()
    length.maximum_length_received = MAX_PDU
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = UID(proposal.implementation_class_uid)
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = proposal.implementation_version_name
    items: list[Any] = [length, class_uid, version]
    for uid, (scu, scp) in proposal.roles.items():
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = UID(uid)
        role.scu_role, role.scp_role = scu, scp
        items.append(role)
    rq.user_information = items
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(rq)
    return bytes(pdu.encode())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return f"TLS: {str(exc.reason).replace('_', ' ').lower()}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
