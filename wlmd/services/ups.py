"""Unified Procedure Step SCP (PS3.4 Annex CC): N-CREATE, N-SET, N-GET, N-ACTION, C-FIND.

One :class:`~wlmd.association.dimse.Service` serves every UPS SOP class, the
final ones (Push, Pull, Watch, Event, Query: ``1.2.840.10008.5.1.4.34.6.x``)
and the retired trial ones that dcm4che2's ``dcmups`` proposes exclusively
(``…34.4.1``–``…34.4.4``). A request is routed by its DIMSE command and, as
PS3.4 CC.2 says, by the SOP Class UID in its command set, not by the
presentation context that carries it: ``dcmups`` puts the trial *Push* UID
in every N-message whichever context it uses, and dcm4che 5's ``upsscu``
always names Push as the Requested SOP Class. A command naming a SOP class
that is not UPS is answered 0x0118 (No Such SOP Class).

The rules (state machine, attribute requirements, matching, subscriptions)
are pure functions in :mod:`wlmd.ups`; the state and the event outbox are in
:mod:`wlmd.state`, one transaction per operation, committed before the
response is sent (an acknowledged operation is durable). This module only
turns requests into store calls and results into responses, and writes one
info line per operation (AE titles, operation, instance UID, status,
duration; never patient data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from wlmd.association.dimse import Request, Responder, Service, respond_with
from wlmd.association.report import AssociationLog
from wlmd.association.wire import C_FIND_RQ, pending_command_set
from wlmd.state.repository import Result, UpsRepository
from wlmd.ups import states
from wlmd.ups.query import build_response, parse_query

LOG = logging.getLogger("wlmd.worker")

PUSH = "1.2.840.10008.5.1.4.34.6.1"
WATCH = "1.2.840.10008.5.1.4.34.6.2"
PULL = "1.2.840.10008.5.1.4.34.6.3"
EVENT = "1.2.840.10008.5.1.4.34.6.4"
QUERY = "1.2.840.10008.5.1.4.34.6.5"
TRIAL_PUSH = "1.2.840.10008.5.1.4.34.4.1"
TRIAL_WATCH = "1.2.840.10008.5.1.4.34.4.2"
TRIAL_PULL = "1.2.840.10008.5.1.4.34.4.3"
TRIAL_EVENT = "1.2.840.10008.5.1.4.34.4.4"

FINAL_CLASSES = (PUSH, WATCH, PULL, EVENT, QUERY)
TRIAL_CLASSES = (TRIAL_PUSH, TRIAL_WATCH, TRIAL_PULL, TRIAL_EVENT)
UPS_CLASSES = FINAL_CLASSES + TRIAL_CLASSES

# DIMSE command fields (PS3.7 E.1)
N_SET_RQ = 0x0120
N_GET_RQ = 0x0110
N_ACTION_RQ = 0x0130
N_CREATE_RQ = 0x0140

# N-ACTION Action Type IDs (PS3.4 CC.2.1–CC.2.3)
CHANGE_STATE = 1
REQUEST_CANCEL = 2
SUBSCRIBE = 3
UNSUBSCRIBE = 4
SUSPEND_GLOBAL = 5
ACTION_NAMES = {
    CHANGE_STATE: "change state",
    REQUEST_CANCEL: "request cancel",
    SUBSCRIBE: "subscribe",
    UNSUBSCRIBE: "unsubscribe",
    SUSPEND_GLOBAL: "suspend global subscription",
}

NO_SUCH_SOP_CLASS = 0x0118
UNABLE_TO_PROCESS = 0xC000  # C-FIND (PS3.4 C.4.1.1.4)
IDENTIFIER_DOES_NOT_MATCH = 0xA900
FIND_PENDING = 0xFF00
FIND_PENDING_WARNING = 0xFF01  # some keys not supported (C.4.1.1.4)
CANCELED = 0xFE00

#: Opens this process's store on first use (the worker's own connection, never
#: one inherited across fork()).
StoreOpener = Callable[[], UpsRepository]


class UpsService:
    """The UPS handlers for one association."""

    def __init__(self, store: StoreOpener, log: AssociationLog) -> None:
        self._open = store
        self.log = log

    def service(self) -> Service:
        return Service(
            "unified procedure step",
            UPS_CLASSES,
            {
                N_CREATE_RQ: self.on_create,
                N_SET_RQ: self.on_set,
                N_GET_RQ: self.on_get,
                N_ACTION_RQ: self.on_action,
                C_FIND_RQ: self.on_find,
            },
        )

    # --- N-CREATE, N-SET, N-GET ------------------------------------------------------

    def on_create(self, request: Request, responder: Responder) -> None:
        """N-CREATE (CC.2.5): a new SCHEDULED step; an empty or absent Affected SOP
        Instance UID (``dcmups create`` without ``-iuid``) lets the SCP assign one."""
        started = time.monotonic()
        uid = str(getattr(request.primitive, "AffectedSOPInstanceUID", None) or "") or None
        result = self._run(request, lambda ds: self._open().create(uid, ds))
        self._answer(request, responder, result, started, "N-CREATE")

    def on_set(self, request: Request, responder: Responder) -> None:
        """N-SET (CC.2.6), under the Transaction UID rules."""
        started = time.monotonic()
        uid = _requested_uid(request)
        result = self._run(request, lambda ds: self._open().set(uid, ds))
        self._answer(request, responder, result, started, "N-SET", data=False)

    def on_get(self, request: Request, responder: Responder) -> None:
        """N-GET (CC.2.7): the attributes asked for, or all; never the Transaction UID."""
        started = time.monotonic()
        uid = _requested_uid(request)
        try:
            tags = _attribute_identifiers(request)
            if request.sop_class_uid not in UPS_CLASSES:
                result = Result(NO_SUCH_SOP_CLASS, uid, reason=f"SOP class {request.sop_class_uid}")
            else:
                result = self._open().get(uid, tags)
        except Exception:
            LOG.exception("UPS N-GET failed with an internal error")
            result = Result(states.PROCESSING_FAILURE, uid, reason="internal error")
        self._answer(request, responder, result, started, "N-GET", data=True)

    # --- N-ACTION ----------------------------------------------------------------------

    def on_action(self, request: Request, responder: Responder) -> None:
        """N-ACTION 1–5: change state, request cancel, (un)subscribe, suspend global."""
        started = time.monotonic()
        uid = _requested_uid(request)
        action = int(getattr(request.primitive, "ActionTypeID", 0) or 0)
        name = f"N-ACTION {ACTION_NAMES.get(action, action)}"
        calling = self.log.calling

        def act(info: Dataset) -> Result:
            store = self._open()
            if action == CHANGE_STATE:
                target = str(info.get("ProcedureStepState", "") or "")
                tuid = str(info.get("TransactionUID", "") or "") or None
                return store.change_state(uid, target, tuid, calling)
            if action == REQUEST_CANCEL:
                return store.request_cancel(uid, info, calling)
            if action == SUBSCRIBE:
                return store.subscribe(uid, info)
            if action == UNSUBSCRIBE:
                return store.unsubscribe(uid, info)
            if action == SUSPEND_GLOBAL:
                return store.suspend_global(uid, info)
            return Result(states.NO_SUCH_ACTION_TYPE, uid, reason=f"action type {action}")

        result = self._run(request, act)
        self._answer(request, responder, result, started, name, action_type=action)

    # --- C-FIND ------------------------------------------------------------------------

    def on_find(self, request: Request, responder: Responder) -> None:
        """C-FIND on Pull, Watch or Query (CC.2.8): pending responses, then the status."""
        started = time.monotonic()
        self.log.queries += 1
        self.log.title(f"UPS C-FIND #{self.log.queries}")
        sent, matches, status, comment = 0, 0, states.SUCCESS, ""
        offending: tuple[int, ...] = ()
        if request.sop_class_uid not in UPS_CLASSES:
            status, comment = NO_SUCH_SOP_CLASS, "not a UPS SOP class"
        else:
            try:
                identifier = request.data_set()
                query = parse_query(identifier)
                if query.invalid:
                    status, offending = IDENTIFIER_DOES_NOT_MATCH, query.invalid
                    comment = "invalid matching key values"
                else:
                    found = self._open().find(query)
                    matches = len(found)
                    pending = FIND_PENDING_WARNING if query.unsupported else FIND_PENDING
                    command = pending_command_set(
                        request.sop_class_uid, request.message_id, pending
                    )
                    syntax = request.context.transfer_syntax
                    for step in found:
                        if responder.cancel_requested or not responder.is_open:
                            break
                        responder.send(command, _encode(build_response(step, query), syntax))
                        sent += 1
                    if responder.cancel_requested:
                        status = CANCELED
            except Exception as exc:
                LOG.debug("UPS C-FIND failed", exc_info=True)
                status, comment = UNABLE_TO_PROCESS, f"unable to process: {type(exc).__name__}"
        LOG.info(
            "UPS C-FIND %s -> %s from %s: %d match%s, %d sent, status 0x%04X%s, %.1f ms",
            self.log.calling,
            self.log.called,
            self.log.peer,
            matches,
            "" if matches == 1 else "es",
            sent,
            status,
            f" ({comment})" if comment else "",
            (time.monotonic() - started) * 1000,
        )
        if responder.is_open:
            failed = states.is_failure(status)
            responder.respond(
                status,
                offending=offending if failed else (),
                error_comment=comment if failed else "",
            )
        self.log.title("idle")

    # --- common --------------------------------------------------------------------------

    def _run(self, request: Request, operation: Callable[[Dataset], Result]) -> Result:
        """Decode the request's data set and run ``operation`` on it; failures as statuses."""
        if request.sop_class_uid not in UPS_CLASSES:
            return Result(NO_SUCH_SOP_CLASS, reason=f"SOP class {request.sop_class_uid}")
        try:
            ds = request.data_set()
        except Exception as exc:
            return Result(states.PROCESSING_FAILURE, reason=f"undecodable data set: {exc}")
        try:
            return operation(ds)
        except Exception:
            LOG.exception("UPS operation failed with an internal error")
            return Result(states.PROCESSING_FAILURE, reason="internal error")

    def _answer(
        self,
        request: Request,
        responder: Responder,
        result: Result,
        started: float,
        operation: str,
        *,
        data: bool = True,
        action_type: int | None = None,
    ) -> None:
        """Send the N-*-RSP and write the operation's info line."""
        self.log.queries += 1
        fields: dict[str, Any] = {
            "AffectedSOPClassUID": request.sop_class_uid or PUSH,
            "AffectedSOPInstanceUID": result.uid or None,
            "Status": result.status,
        }
        if action_type is not None:
            fields["ActionTypeID"] = action_type
        if result.failed and result.reason:
            fields["ErrorComment"] = result.reason[:64]
        if result.failed and result.offending and request.command_field in (N_SET_RQ, N_GET_RQ):
            fields["AttributeIdentifierList"] = list(result.offending)
        payload = None
        if data and result.dataset is not None and not result.failed:
            payload = _encode(result.dataset, request.context.transfer_syntax)
        LOG.info(
            "UPS %s %s -> %s from %s: %s, status 0x%04X%s, %.1f ms",
            operation,
            self.log.calling,
            self.log.called,
            self.log.peer,
            result.uid or "(no instance)",
            result.status,
            f" ({result.reason})" if result.reason and result.status else "",
            (time.monotonic() - started) * 1000,
        )
        if responder.is_open:
            try:
                respond_with(responder, fields, payload)
            except OSError as exc:
                LOG.warning("UPS %s response to %s not sent: %s", operation, self.log.calling, exc)


def _attribute_identifiers(request: Request) -> list[int] | None:
    """N-GET's Attribute Identifier List (0000,1005): None (all) when absent or empty.

    An AT element of one value decodes as a single tag, not a list of one.
    """
    asked = getattr(request.primitive, "AttributeIdentifierList", None)
    if asked is None or asked == "" or asked == []:
        return None
    if isinstance(asked, (list, tuple)) or hasattr(asked, "__iter__"):
        return [int(tag) for tag in asked]
    return [int(asked)]


def _requested_uid(request: Request) -> str:
    primitive = request.primitive
    uid = getattr(primitive, "RequestedSOPInstanceUID", None)
    return str(uid or getattr(primitive, "AffectedSOPInstanceUID", None) or "")


def _encode(ds: Dataset, transfer_syntax: str) -> bytes:
    """A data set in the presentation context's transfer syntax."""
    from pydicom.uid import UID

    syntax = UID(transfer_syntax)
    data = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    if data is None:
        raise ValueError("data set could not be encoded")
    return bytes(data)
