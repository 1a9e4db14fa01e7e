"""A-ASSOCIATE-RQ in, A-ASSOCIATE-AC or -RJ out (PS3.8 7.1, 9.3.2-9.3.4; PS3.7 D.3.3).

Decoding and encoding are pynetdicom's (:class:`pynetdicom.pdu.A_ASSOCIATE_RQ`
and ``_AC``), and so is the presentation context negotiation
(:func:`pynetdicom.presentation.negotiate_as_acceptor`), so the answers are
those wlmd gave when pynetdicom ran the whole association: our transfer
syntax preference decides (as wlmscpfs's +x options), SCP/SCU role selection
is answered as pynetdicom answers it for contexts without a configured role
(no role item), asynchronous operations, user identity and SOP class
(common) extended negotiation get no response item (a window of 1, the
identity not checked: PS3.7 D.3.3.3, D.3.3.7), and the user information
carries -pdu, our implementation class UID and version name.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom.uid import UID
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
)
from pynetdicom.presentation import PresentationContext, build_context, negotiate_as_acceptor

from wlmd.association.dimse import Context

#: PS3.7 A.2.1
APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"


@dataclass(frozen=True)
class AcceptorIdentity:
    """What we say about ourselves in every A-ASSOCIATE-AC."""

    implementation_class_uid: str
    implementation_version_name: str
    max_pdu: int


@dataclass
class AssociateRequest:
    """A decoded A-ASSOCIATE-RQ, as admission checks and the logs need it."""

    primitive: A_ASSOCIATE
    calling_ae_title: str
    called_ae_title: str
    application_context: str
    implementation_class_uid: str
    #: the peer's Maximum Length Received (0: no limit), for our P-DATA fragments
    peer_max_pdu: int
    contexts: list[PresentationContext] = field(default_factory=list)
    #: negotiate()'s outcomes for this request, by what we offer (see decode_request)
    outcomes: dict[tuple[Any, ...], Negotiated] = field(
        default_factory=dict, compare=False, repr=False
    )


def _ae(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip()


#: A-ASSOCIATE-RQs remembered, by their bytes (see decode_request)
REMEMBERED_REQUESTS = 64


@functools.lru_cache(maxsize=REMEMBERED_REQUESTS)
def decode_request(pdu: bytes) -> AssociateRequest:
    """Decode an A-ASSOCIATE-RQ PDU; raises (ValueError, struct.error, ...) on a malformed one.

    A modality sends the very same A-ASSOCIATE-RQ at every poll, and a spare
    worker serves association after association: the last
    :data:`REMEMBERED_REQUESTS` distinct ones are decoded once, and
    :func:`negotiate` answers each once for what we offer. Both are pure
    functions of the bytes (and of our offer), so the answer is the one a
    fresh decoding gives; the shared request is never changed (negotiate
    works on copies of its contexts). Decoding and negotiating were ~40 % of
    a warm worker's association set-up.
    """
    decoded = A_ASSOCIATE_RQ()
    decoded.decode(pdu)
    primitive = decoded.to_primitive()
    peer_max = 0
    class_uid = ""
    for item in primitive.user_information:  # the primitive's own getters log when absent
        if isinstance(item, MaximumLengthNotification):
            peer_max = int(item.maximum_length_received or 0)
        elif isinstance(item, ImplementationClassUIDNotification):
            class_uid = str(item.implementation_class_uid or "")
    return AssociateRequest(
        primitive=primitive,
        calling_ae_title=_ae(primitive.calling_ae_title),
        called_ae_title=_ae(primitive.called_ae_title),
        application_context=str(primitive.application_context_name or ""),
        implementation_class_uid=class_uid,
        peer_max_pdu=peer_max,
        contexts=list(primitive.presentation_context_definition_list),
    )


@dataclass
class Negotiated:
    """The outcome of presentation context negotiation (shared: never changed)."""

    accepted: dict[int, Context]
    #: the refused ones with pynetdicom's results (PS3.8 9.3.3.2), as proposed
    refused: list[PresentationContext]
    ac_pdu: bytes
    #: each proposed context's transfer syntaxes, ours first in our order (for the logs)
    proposed: dict[int, list[str]] = field(default_factory=dict)


@functools.lru_cache(maxsize=16)
def _supported(
    abstract_syntaxes: tuple[str, ...], transfer_syntaxes: tuple[str, ...]
) -> list[PresentationContext]:
    """Our presentation contexts (negotiate_as_acceptor only reads them): built once."""
    return [build_context(uid, list(transfer_syntaxes)) for uid in abstract_syntaxes]


def _in_order(cx: PresentationContext, preference: list[str]) -> PresentationContext:
    """A copy of a proposed context, its transfer syntaxes in our order of preference."""

    def rank(uid: str | bytes) -> int:
        return preference.index(str(uid)) if uid in preference else len(preference)

    copy = PresentationContext()
    copy.context_id = cx.context_id
    copy.abstract_syntax = cx.abstract_syntax
    copy.transfer_syntax = sorted(cx.transfer_syntax, key=rank)
    return copy


def negotiate(
    request: AssociateRequest,
    abstract_syntaxes: Sequence[str],
    transfer_syntaxes: Sequence[str],
    identity: AcceptorIdentity,
) -> Negotiated:
    """Negotiate the proposed contexts against ours and encode the A-ASSOCIATE-AC.

    ``transfer_syntaxes`` is our preference, most preferred first:
    pynetdicom 3 picks the first of ours that the requestor proposed (as
    wlmscpfs's +x options do). The proposed lists are put in that order too
    (copies: ``request`` is shared, see :func:`decode_request`), so that a
    refused context names the same one and the log lines name them the same way.
    Answered once per request and offer.
    """
    key = (tuple(abstract_syntaxes), tuple(transfer_syntaxes), identity)
    known = request.outcomes.get(key)
    if known is None:
        known = request.outcomes[key] = _negotiate(request, *key)
    return known


def _negotiate(
    request: AssociateRequest,
    abstract_syntaxes: tuple[str, ...],
    transfer_syntaxes: tuple[str, ...],
    identity: AcceptorIdentity,
) -> Negotiated:
    preference = list(transfer_syntaxes)
    proposed = [_in_order(cx, preference) for cx in request.contexts]
    supported = _supported(abstract_syntaxes, transfer_syntaxes)
    roles = {
        UID(str(item.sop_class_uid)): (item.scu_role, item.scp_role)
        for item in request.primitive.user_information
        if isinstance(item, SCP_SCU_RoleSelectionNegotiation)
    }
    results, ac_roles = negotiate_as_acceptor(proposed, supported, roles)
    accepted = [cx for cx in results if cx.result == 0x00]
    refused = [cx for cx in results if cx.result != 0x00]

    primitive = A_ASSOCIATE()
    primitive.application_context_name = UID(APPLICATION_CONTEXT_NAME)
    primitive.calling_ae_title = request.primitive.calling_ae_title
    primitive.called_ae_title = request.primitive.called_ae_title
    primitive.result = 0x00
    primitive.result_source = 0x01
    primitive.presentation_context_definition_results_list = accepted + refused
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = identity.max_pdu
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = UID(identity.implementation_class_uid)
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = identity.implementation_version_name
    primitive.user_information = [max_length, class_uid, version, *ac_roles]
    ac = A_ASSOCIATE_AC()
    ac.from_primitive(primitive)
    return Negotiated(
        accepted={
            int(cx.context_id or 0): Context(
                int(cx.context_id or 0), str(cx.abstract_syntax), str(cx.transfer_syntax[0])
            )
            for cx in accepted
        },
        refused=refused,
        ac_pdu=bytes(ac.encode()),
        proposed={
            int(cx.context_id or 0): [str(ts) for ts in cx.transfer_syntax] for cx in proposed
        },
    )
