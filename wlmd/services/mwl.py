"""Modality Worklist C-FIND (PS3.4 Annex K) from a storage area of :mod:`wlmd.worklist`.

The handler runs the query (:func:`wlmd.worklist.query.run_find`) and sends
the pending responses itself: their command set is the same for every
response of a query, so it is encoded once, and each identifier is encoded
from the worklist's raw bytes (no pydicom round trip). Between batches of
responses the association layer looks for a C-CANCEL-RQ (PS3.4 K.4.1.2.3).
"""

from __future__ import annotations

import logging
import time

from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

from wlmd.association.dimse import Request, Responder, Service
from wlmd.association.logtext import describe_tags
from wlmd.association.report import AssociationLog
from wlmd.association.wire import C_FIND_RQ, pending_command_set
from wlmd.services import requestfilter
from wlmd.services.requestlog import write_request_file
from wlmd.settings.config import Config
from wlmd.worklist import keys
from wlmd.worklist.encode import (
    DEFLATED_EXPLICIT_LITTLE,
    EXPLICIT_BIG,
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    Encoding,
)
from wlmd.worklist.identifier import parse as parse_identifier
from wlmd.worklist.match import MatchOptions
from wlmd.worklist.query import FindOptions, FindResult, run_find
from wlmd.worklist.respbytes import ResponseEncoder
from wlmd.worklist.searchmask import Identifier
from wlmd.worklist.store import WorklistStore

LOG = logging.getLogger("wlmd.worker")

MODALITY_WORKLIST_FIND = UID("1.2.840.10008.5.1.4.31")

_ENCODINGS: dict[str, Encoding] = {
    ImplicitVRLittleEndian: IMPLICIT_LITTLE,
    ExplicitVRLittleEndian: EXPLICIT_LITTLE,
    ExplicitVRBigEndian: EXPLICIT_BIG,
    DeflatedExplicitVRLittleEndian: DEFLATED_EXPLICIT_LITTLE,
}


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


class WorklistService:
    """C-FIND against the storage area named by the called AE title."""

    def __init__(self, config: Config, store: WorklistStore, log: AssociationLog) -> None:
        self.config = config
        self.store = store
        self.log = log
        self.options = find_options(config)

    def service(self) -> Service:
        return Service("modality worklist", (MODALITY_WORKLIST_FIND,), {C_FIND_RQ: self.on_find})

    def on_find(self, request: Request, responder: Responder) -> None:
        """Answer one C-FIND: the pending responses, then the final status."""
        started = time.monotonic()
        self.log.queries += 1
        self.log.title(f"C-FIND #{self.log.queries}")
        sent = 0
        try:
            result, sent = self._answer(request, responder)
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
        if responder.is_open:
            failed = result.final_status not in (keys.SUCCESS, keys.CANCEL)
            try:
                responder.respond(
                    result.final_status,
                    offending=tuple(result.offending) if failed else (),
                    error_comment=result.error_comment if failed else "",
                )
            except OSError as exc:
                LOG.warning("C-FIND response to %s not sent: %s", self.log.calling, exc)
        if self.config.sleep_after:
            time.sleep(self.config.sleep_after)
        self.log.title("idle")

    def _answer(self, request: Request, responder: Responder) -> tuple[FindResult, int]:
        """Run the query and send the pending responses; returns (result, number sent)."""
        try:
            identifier = self._identifier(request)
        except Exception as exc:
            LOG.warning("C-FIND identifier from %s cannot be decoded: %s", self.log.calling, exc)
            return FindResult(
                keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
                error_comment="Identifier cannot be decoded",
            ), 0
        if LOG.isEnabledFor(logging.DEBUG):
            LOG.debug("C-FIND request identifier:\n%s", identifier)
        if self.config.request_file_path and isinstance(identifier, Dataset):
            write_request_file(
                self.config.request_file_path,
                self.config.request_file_format,
                identifier,
                self.log.calling,
                self.log.called,
            )
        if self.config.request_filter:
            assert isinstance(identifier, Dataset)  # see _identifier(): a filter takes a Dataset
            filtered = requestfilter.apply(
                requestfilter.load(self.config.request_filter),
                identifier,
                requestfilter.RequestInfo(self.log.calling, self.log.called, self.log.peer),
                UID(request.context.transfer_syntax),
            )
            if filtered.identifier is None:
                return FindResult(
                    keys.UNABLE_TO_PROCESS, error_comment="refused by the request filter"
                ), 0
            identifier = filtered.identifier
        if self.config.sleep_before:
            time.sleep(self.config.sleep_before)
        area = self.store.area(self.log.called)
        if area is None:
            LOG.error("storage area for %s disappeared", self.log.called)
            return FindResult(
                keys.OUT_OF_RESOURCES, error_comment="Storage area no longer exists"
            ), 0
        result = run_find(area, identifier, self.log.calling, self.options)
        return result, self._send_pendings(request, responder, result)

    def _identifier(self, request: Request) -> Identifier:
        """The request identifier: read from its bytes, or by pydicom (raises if undecodable).

        pydicom decodes it where the fast reader gives up (anything unusual,
        deflated), and where the identifier is shown (debug), written
        (--request-file-path) or handed to --request-filter: those take a
        Dataset, as before.
        """
        encoding = _ENCODINGS.get(request.context.transfer_syntax)
        if (
            encoding is not None
            and not encoding.deflated
            and not self.config.request_file_path
            and not self.config.request_filter
            and not LOG.isEnabledFor(logging.DEBUG)
        ):
            parsed = parse_identifier(
                request.data_bytes(), encoding.implicit_vr, encoding.little_endian
            )
            if parsed is not None:
                return parsed
        return request.data_set()  # element values stay raw until used

    def _send_pendings(self, request: Request, responder: Responder, result: FindResult) -> int:
        """Send the pending C-FIND-RSPs, in batches; stop at a C-CANCEL or a closed link."""
        encoding = _ENCODINGS.get(request.context.transfer_syntax, EXPLICIT_LITTLE)
        if not responder.is_open:  # the peer closed the connection while we were matching
            LOG.info("C-FIND from %s: connection closed before the responses", self.log.calling)
            return 0
        command = pending_command_set(
            request.sop_class_uid, request.message_id, result.pending_status
        )
        sent = 0
        if result.plan is None:
            return 0
        encoder = ResponseEncoder(
            result.plan, encoding, result.return_charset, self.config.compression_level
        )
        try:
            for entry in result.matches:
                if responder.cancel_requested:
                    result.final_status = keys.CANCEL
                    break
                if not responder.is_open:
                    break
                if self.config.sleep_during:
                    responder.flush()
                    if responder.cancel_requested:
                        result.final_status = keys.CANCEL
                        break
                    time.sleep(self.config.sleep_during)
                responder.send(command, encoder.encode(entry))
                sent += 1
            if self.config.sleep_during:  # seen before the pause; else with the final response
                responder.flush()
        except OSError as exc:
            LOG.warning("C-FIND responses to %s not sent: %s", self.log.calling, exc)
            responder.session.is_established = False
        if result.final_status == keys.CANCEL and sent < len(result.matches):
            LOG.info("C-FIND cancelled by %s after %d responses", self.log.calling, sent)
        return sent
