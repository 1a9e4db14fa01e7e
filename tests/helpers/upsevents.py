"""UPS event receivers for tests: pynetdicom acceptors on 127.0.0.1 as subscribers run them.

A :class:`Receiver` accepts the UPS Event context only when the requestor
proposes SCP/SCU role selection SCU=0/SCP=1 for it, as dcm4che2's ``dcmups
-L`` does, and answers an N-EVENT-REPORT 0x0118 (No Such SOP Class) unless
its Affected SOP Class UID is the Push UID of the context's family.
``trial_only=True`` offers only the trial Event class: a stand-in for
``dcmups -L``. Every report is recorded with the time it arrived, so tests
assert order and time bounds from the events themselves.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, evt, register_uid
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class_n import UnifiedProcedureStepServiceClass

EVENT = "1.2.840.10008.5.1.4.34.6.4"
TRIAL_EVENT = "1.2.840.10008.5.1.4.34.4.4"
PUSH = "1.2.840.10008.5.1.4.34.6.1"
TRIAL_PUSH = "1.2.840.10008.5.1.4.34.4.1"
PUSH_OF = {EVENT: PUSH, TRIAL_EVENT: TRIAL_PUSH}
NO_SUCH_SOP_CLASS = 0x0118


_registered = False


def register_trial_uids() -> None:
    """pynetdicom 3.0.4 knows only the final UIDs: teach this process the trial ones."""
    global _registered
    if not _registered:
        register_uid(TRIAL_PUSH, "UPSPushTrial", UnifiedProcedureStepServiceClass)
        register_uid(TRIAL_EVENT, "UPSEventTrial", UnifiedProcedureStepServiceClass)
        _registered = True


@dataclass(frozen=True)
class Report:
    """One N-EVENT-REPORT as the receiver saw it."""

    at: float  # time.monotonic()
    type: int
    sop_class: str
    uid: str
    info: Dataset
    context: str  # the Event abstract syntax it came on
    status: int  # what the receiver answered
    association: int  # which association (a count per receiver)


class Silent:
    """A port that completes the TCP handshake and then never answers (a hung subscriber)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_server(("127.0.0.1", port), backlog=16)

    def close(self) -> None:
        self.sock.close()


@dataclass
class Receiver:
    ae_title: str
    port: int
    trial_only: bool = False
    status: int = 0x0000  # the answer to an acceptable report
    delay: float = 0.0  # seconds before answering (a slow subscriber)
    tls: ssl.SSLContext | None = None  # listen with DICOM TLS
    reports: list[Report] = field(default_factory=list)
    refused_contexts: int = 0  # Event contexts proposed without the role selection
    associations: int = 0
    _server: Any = None
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def start(self) -> Receiver:
        register_trial_uids()
        ae = AE(ae_title=self.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
        for uid in (TRIAL_EVENT,) if self.trial_only else (EVENT, TRIAL_EVENT):
            ae.add_supported_context(
                uid, [ImplicitVRLittleEndian, ExplicitVRLittleEndian], scu_role=False, scp_role=True
            )
        handlers = [
            (evt.EVT_REQUESTED, self._requested),
            (evt.EVT_N_EVENT_REPORT, self._report),
        ]
        self._server = ae.start_server(
            ("127.0.0.1", self.port), block=False, evt_handlers=handlers, ssl_context=self.tls
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    def _requested(self, event: Any) -> None:
        """Drop the Event contexts the requestor did not propose SCU=0/SCP=1 for."""
        roles = event.assoc.requestor.role_selection
        primitive = event.assoc.requestor.primitive
        proposed = {
            str(cx.abstract_syntax) for cx in primitive.presentation_context_definition_list
        }
        kept: list[PresentationContext] = []
        for cx in event.assoc.acceptor.supported_contexts:
            role = roles.get(cx.abstract_syntax)
            if role is not None and role.scu_role is False and role.scp_role is True:
                kept.append(cx)
            elif str(cx.abstract_syntax) in proposed:
                with self._cond:
                    self.refused_contexts += 1
        event.assoc.acceptor.supported_contexts = kept
        with self._cond:
            self.associations += 1
            event.assoc.wlmd_test_number = self.associations

    def _report(self, event: Any) -> tuple[int, Dataset | None]:
        request = event.request
        context = str(event.context.abstract_syntax)
        sop_class = str(request.AffectedSOPClassUID)
        status = self.status if PUSH_OF.get(context) == sop_class else NO_SUCH_SOP_CLASS
        report = Report(
            time.monotonic(),
            int(request.EventTypeID),
            sop_class,
            str(request.AffectedSOPInstanceUID),
            event.event_information,
            context,
            status,
            getattr(event.assoc, "wlmd_test_number", 0),
        )
        with self._cond:
            self.reports.append(report)
            self._cond.notify_all()
        if self.delay:
            time.sleep(self.delay)  # the slow subscriber itself, not synchronisation
        return status, None

    def accepted(self) -> list[Report]:
        with self._cond:
            return [r for r in self.reports if r.status == 0]

    def wait_for(
        self, condition: Callable[[list[Report]], object], what: str, timeout: float = 15.0
    ) -> list[Report]:
        """Block until ``condition(accepted reports)`` holds; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                accepted = [r for r in self.reports if r.status == 0]
                if condition(accepted):
                    return accepted
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{self.ae_title}: timed out after {timeout}s waiting for {what};"
                        f" got {[(r.type, r.uid, hex(r.status)) for r in self.reports]}"
                    )
                self._cond.wait(left)
