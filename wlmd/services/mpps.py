"""Modality Performed Procedure Step SCP (PS3.4 Annex F.7): N-CREATE and N-SET.

A modality reports what it did: N-CREATE "IN PROGRESS" when it starts a
procedure step (IHE RAD-6), N-SET "COMPLETED" or "DISCONTINUED" when it
ends (RAD-7). The rules are :mod:`wlmd.mpps.rules`, the steps live in the
state store (:mod:`wlmd.state.mpps`, committed before the response is sent).
One info line per operation: AE titles, operation, instance UID, status,
duration, and the scheduled step it performs (Study Instance UID and SPS
ID are identifiers, not patient data).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dsutils import encode

from wlmd.association.dimse import Request, Responder, Service, respond_with
from wlmd.association.logtext import describe_tags
from wlmd.association.report import AssociationLog
from wlmd.mpps import rules
from wlmd.state.mpps import MppsRepository, MppsResult

LOG = logging.getLogger("wlmd.worker")

N_SET_RQ = 0x0120
N_CREATE_RQ = 0x0140
NO_SUCH_SOP_CLASS = 0x0118

#: Opens this process's repository on first use (never one inherited across fork()).
StoreOpener = Callable[[], MppsRepository]


class MppsService:
    """The MPPS handlers for one association."""

    def __init__(self, store: StoreOpener, log: AssociationLog) -> None:
        self._open = store
        self.log = log

    def service(self) -> Service:
        return Service(
            "modality performed procedure step",
            (rules.SOP_CLASS,),
            {N_CREATE_RQ: self.on_create, N_SET_RQ: self.on_set},
        )

    def on_create(self, request: Request, responder: Responder) -> None:
        started = time.monotonic()
        uid = str(getattr(request.primitive, "AffectedSOPInstanceUID", None) or "") or None
        result = self._run(request, lambda ds: self._open().create(uid, ds))
        self._answer(request, responder, result, started, "N-CREATE")

    def on_set(self, request: Request, responder: Responder) -> None:
        started = time.monotonic()
        primitive = request.primitive
        uid = str(getattr(primitive, "RequestedSOPInstanceUID", None) or "")
        result = self._run(request, lambda ds: self._open().set(uid, ds))
        self._answer(request, responder, result, started, "N-SET")

    def _run(self, request: Request, operation: Callable[[Dataset], MppsResult]) -> MppsResult:
        if request.sop_class_uid != rules.SOP_CLASS:
            return MppsResult(NO_SUCH_SOP_CLASS, reason=f"SOP class {request.sop_class_uid}")
        try:
            ds = request.data_set()
        except Exception as exc:
            return MppsResult(rules.PROCESSING_FAILURE, reason=f"undecodable data set: {exc}")
        try:
            return operation(ds)
        except Exception:
            LOG.exception("MPPS operation failed with an internal error")
            return MppsResult(rules.PROCESSING_FAILURE, reason="internal error")

    def _answer(
        self,
        request: Request,
        responder: Responder,
        result: MppsResult,
        started: float,
        operation: str,
    ) -> None:
        self.log.queries += 1
        fields: dict[str, Any] = {
            "AffectedSOPClassUID": request.sop_class_uid or rules.SOP_CLASS,
            "AffectedSOPInstanceUID": result.uid or None,
            "Status": result.status,
        }
        if result.failed:
            comment = rules.NO_LONGER_UPDATABLE_COMMENT if result.error_id else result.reason
            fields["ErrorComment"] = comment[:64]
            if result.error_id is not None:
                fields["ErrorID"] = result.error_id
            if result.offending and request.command_field == N_SET_RQ:
                fields["AttributeIdentifierList"] = list(result.offending)
        payload = None
        if result.dataset is not None and not result.failed:
            payload = _encode(result.dataset, request.context.transfer_syntax)
        status = rules.text_value(result.dataset, rules.STATUS) if result.dataset else ""
        link = result.link
        LOG.info(
            "MPPS %s %s -> %s from %s: %s%s%s, status 0x%04X%s%s%s, %.1f ms",
            operation,
            self.log.calling,
            self.log.called,
            self.log.peer,
            result.uid or "(no instance)",
            f" {status}" if status else "",
            f" (study {link.study_instance_uid}, SPS {link.sps_id or '-'})" if link else "",
            result.status,
            f" ({result.reason})" if result.failed and result.reason else "",
            f", offending {describe_tags(list(result.offending))}" if result.offending else "",
            f", ignored {describe_tags(list(result.ignored))}" if result.ignored else "",
            (time.monotonic() - started) * 1000,
        )
        if responder.is_open:
            try:
                respond_with(responder, fields, payload)
            except OSError as exc:
                LOG.warning("MPPS %s response to %s not sent: %s", operation, self.log.calling, exc)


def _encode(ds: Dataset, transfer_syntax: str) -> bytes:
    syntax = UID(transfer_syntax)
    data = encode(ds, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
    if data is None:
        raise ValueError("data set could not be encoded")
    return bytes(data)
