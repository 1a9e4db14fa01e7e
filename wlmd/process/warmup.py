"""A spare worker's warm-up: the association layer run once on canned PDUs.

A forked process pays copy-on-write for every page it touches (CPython
writes reference counts into every object it uses). A spare worker
(:mod:`wlmd.process.spare`) touches the association layer's code paths before its
connection arrives, so the modality does not wait for those copies; then
``gc.freeze()`` keeps the collector from walking (and touching) everything
inherited from the supervisor.
"""

from __future__ import annotations

import gc
import logging
import socket
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian

from wlmd.association import runtime
from wlmd.association.dimse import Request, Responder, Service
from wlmd.association.link import Link
from wlmd.association.negotiation import APPLICATION_CONTEXT_NAME
from wlmd.association.runtime import Settings
from wlmd.association.wire import C_FIND_RQ, pending_command_set
from wlmd.services.echo import VERIFICATION
from wlmd.services.mwl import MODALITY_WORKLIST_FIND

LOG = logging.getLogger("wlmd.worker")

#: A-RELEASE-RQ (PS3.8 9.3.6), as the requestor of the warm-up association sends it
RELEASE_RQ = bytes.fromhex("05000000000400000000")

_PDUS: tuple[bytes, bytes] | None = None


def prepare(implementation_class_uid: str, settings: Settings | None = None) -> None:
    """Encode (once, in the supervisor) an A-ASSOCIATE-RQ and a C-FIND-RQ for :func:`run`."""
    global _PDUS
    if _PDUS is not None:
        return
    try:
        _PDUS = _encode(implementation_class_uid)
    except Exception as exc:  # a spare without a warm-up is only slower
        LOG.debug("warm-up PDUs not encoded: %s", exc)
        _PDUS = (b"", b"")
    if settings is not None:  # lazily built caches (pydicom, pynetdicom) then exist before fork
        run(settings, freeze=False)


def _encode(implementation_class_uid: str) -> tuple[bytes, bytes]:
    from pynetdicom.dimse_messages import C_FIND_RQ as FindMessage
    from pynetdicom.dimse_primitives import C_FIND
    from pynetdicom.dsutils import encode
    from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF
    from pynetdicom.pdu_primitives import (
        A_ASSOCIATE,
        ImplementationClassUIDNotification,
        MaximumLengthNotification,
    )
    from pynetdicom.presentation import build_context

    rq = A_ASSOCIATE()
    rq.application_context_name = APPLICATION_CONTEXT_NAME
    rq.calling_ae_title = "WARMUP"
    rq.called_ae_title = "WARMUP"
    contexts = [
        build_context(VERIFICATION, [ImplicitVRLittleEndian]),
        build_context(MODALITY_WORKLIST_FIND, [ImplicitVRLittleEndian]),
    ]
    for number, cx in enumerate(contexts):
        cx.context_id = 2 * number + 1
    rq.presentation_context_definition_list = contexts
    max_length = MaximumLengthNotification()
    max_length.maximum_length_received = 16384
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = implementation_class_uid
    rq.user_information = [max_length, class_uid]
    associate = A_ASSOCIATE_RQ()
    associate.from_primitive(rq)
    identifier = Dataset()
    identifier.PatientID = "WARMUP"
    identifier.PatientName = ""
    step = Dataset()
    step.Modality = ""
    step.ScheduledProcedureStepStartDate = ""
    identifier.ScheduledProcedureStepSequence = [step]
    find = C_FIND()
    find.MessageID = 1
    find.AffectedSOPClassUID = MODALITY_WORKLIST_FIND
    find.Priority = 2
    find.Identifier = BytesIO(encode(identifier, True, True) or b"")
    message = FindMessage()
    message.primitive_to_message(find)
    pdus = b"".join(bytes(P_DATA_TF(p).encode()) for p in message.encode_msg(3, 16384))
    return bytes(associate.encode()), pdus


def run(settings: Settings, freeze: bool = True) -> None:
    """In a spare worker: one canned association through the runtime, then freeze; never raises.

    No query is run: it would take the read lock, and a spare must never
    wait for a writer before its connection arrives.
    """
    try:
        if _PDUS is not None and _PDUS[0]:
            _exercise(settings, *_PDUS)
    except Exception as exc:  # a failed warm-up only costs speed
        LOG.debug("warm-up failed: %s", exc)
    if freeze:
        gc.freeze()


def _exercise(settings: Settings, rq_pdu: bytes, find_pdus: bytes) -> None:
    """One whole association through the runtime, over a socket pair: RQ, C-FIND, release."""
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(rq_pdu + find_pdus + RELEASE_RQ)
        theirs.shutdown(socket.SHUT_WR)
        services = [
            Service("verification", (VERIFICATION,), {}),
            Service("warm-up", (MODALITY_WORKLIST_FIND,), {C_FIND_RQ: _answer}),
        ]
        runtime.serve(Link(ours), services, settings, runtime.Hooks())
    finally:
        ours.close()
        theirs.close()


def _answer(request: Request, responder: Responder) -> None:
    for element in request.data_set():
        _ = element.value
    command = pending_command_set(request.sop_class_uid, request.message_id, 0xFF00)
    responder.send(command, b"")
    responder.flush()
    responder.respond(0x0000)
