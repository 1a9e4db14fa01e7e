"""One association to a UPS event subscriber: N-EVENT-REPORTs on the Event SOP class.

The UPS SCP sends its events as the *requestor* of a new association to the
subscriber's address (PS3.4 CC.2.4; the address comes from
``--ups-subscribers``, the standard leaves it to configuration). In that
association the SCP is the SCP of the Event SOP class and the subscriber
its SCU, the reverse of who opened it, so the requestor proposes SCP/SCU
role selection SCU=0/SCP=1 (PS3.7 D.3.3.4); dcm4che2's ``dcmups -L``
refuses the Event context without it.

Which family: the final Event class ``1.2.840.10008.5.1.4.34.6.4`` and the
retired trial one ``…34.4.4`` (the only one ``dcmups`` knows) are both
proposed, each with Implicit and Explicit VR Little Endian; the report goes
on the context the subscriber accepted (the final one when both were), and
its Affected SOP Class UID is the Push UID of that family, which is what
CC.2.4 asks (the events belong to the UPS Push SOP instance) and what
``dcmups`` checks (0x0118 otherwise). pynetdicom 3.0.4 does not know the
trial UIDs: :func:`register_trial_uids` registers them, in the event sender
process only.

Which answer counts as delivered: Success and the Warning statuses (the
receiver took the report; PS3.7 C.4 and 10.1.1.1.8); a Failure status is
a receiver that refused it, which a retry may fix once its administrator
does (a wrong SOP class, a busy application), so it is retried with the
outbox's backoff like a subscriber that is down. Every step is bounded:
connection, A-ASSOCIATE, each N-EVENT-REPORT response, the network.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, build_role, register_uid
from pynetdicom.association import Association
from pynetdicom.service_class_n import UnifiedProcedureStepServiceClass

from wlmd.services.ups import EVENT, PUSH, TRIAL_EVENT, TRIAL_PUSH
from wlmd.services.upssubscribers import Subscriber
from wlmd.state.outbox import Delivery
from wlmd.ups.subscriptions import EventType

#: The Push UID each family's reports name as Affected SOP Class.
PUSH_OF = {EVENT: PUSH, TRIAL_EVENT: TRIAL_PUSH}
SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian]

EVENT_NAMES = {
    EventType.STATE_REPORT: "State Report",
    EventType.CANCEL_REQUESTED: "Cancel Requested",
    EventType.PROGRESS_REPORT: "Progress Report",
    EventType.SCP_STATUS_CHANGE: "SCP Status Change",
    EventType.ASSIGNED: "Assigned",
}

_registered = False


def register_trial_uids() -> None:
    """Teach pynetdicom the trial Push and Event UIDs (once per process)."""
    global _registered
    if _registered:
        return
    register_uid(TRIAL_PUSH, "UnifiedProcedureStepPushTrial", UnifiedProcedureStepServiceClass)
    register_uid(TRIAL_EVENT, "UnifiedProcedureStepEventTrial", UnifiedProcedureStepServiceClass)
    _registered = True


def delivered(status: int) -> bool:
    """Success or Warning: the subscriber took the report (PS3.7 C.1, C.2)."""
    return status in (0x0000, 0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF


@dataclass(frozen=True)
class Timeouts:
    """Seconds for each step; a subscriber never holds the sender longer."""

    connect: float = 5.0
    acse: float = 5.0
    dimse: float = 5.0
    network: float = 10.0


class DeliveryError(Exception):
    """No association to the subscriber; ``str()`` says why, for the log."""


def client_context(cert: str | None, key: str | None, ca: str | None) -> ssl.SSLContext:
    """TLS towards a subscriber marked ``tls``: its certificate checked against
    ``--tls-ca`` (the system's CAs without it), ours presented when we have one."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert:
        context.load_cert_chain(cert, key or None)
    return context


def where(subscriber: Subscriber) -> str:
    return f"{subscriber.ae_title} at {subscriber.host}:{subscriber.port}"


class EventLink:
    """An established association to one subscriber, for a batch of reports."""

    def __init__(self, assoc: Association, event_uid: str) -> None:
        self.assoc = assoc
        self.event_uid = event_uid
        self._message_id = 0

    @classmethod
    def open(
        cls,
        subscriber: Subscriber,
        calling_ae: str,
        timeouts: Timeouts,
        tls: ssl.SSLContext | None = None,
    ) -> EventLink:
        ae = AE(ae_title=calling_ae)
        ae.connection_timeout = timeouts.connect
        ae.acse_timeout = timeouts.acse
        ae.dimse_timeout = timeouts.dimse
        ae.network_timeout = timeouts.network
        for uid in (EVENT, TRIAL_EVENT):
            ae.add_requested_context(uid, SYNTAXES)
        roles = [build_role(uid, scu_role=False, scp_role=True) for uid in (EVENT, TRIAL_EVENT)]
        assoc = ae.associate(
            subscriber.host,
            subscriber.port,
            ae_title=subscriber.ae_title,
            ext_neg=roles,  # type: ignore[arg-type]
            tls_args=(tls, subscriber.host) if tls is not None else None,
        )
        if not assoc.is_established:
            if assoc.is_rejected:
                raise DeliveryError("association rejected")
            if assoc.is_aborted:
                raise DeliveryError("association aborted")
            raise DeliveryError(
                f"no association (connection refused, or no answer within {timeouts.connect:g} s)"
            )
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        for uid in (EVENT, TRIAL_EVENT):
            if uid in accepted:
                return cls(assoc, uid)
        with contextlib.suppress(Exception):
            assoc.release()
        raise DeliveryError("the UPS Event SOP class was not accepted (final nor trial)")

    @property
    def family(self) -> str:
        return "trial" if self.event_uid == TRIAL_EVENT else "final"

    def send(self, delivery: Delivery) -> int | None:
        """The subscriber's status, or None when no answer came (the association is gone)."""
        self._message_id = self._message_id % 65535 + 1
        try:
            status, _reply = self.assoc.send_n_event_report(
                delivery.info,
                int(delivery.type),
                PUSH_OF[self.event_uid],
                delivery.uid,
                msg_id=self._message_id,
                meta_uid=self.event_uid,
            )
        except (RuntimeError, ValueError, OSError) as exc:  # not established any more, encoding
            logging.getLogger("wlmd.events").debug("N-EVENT-REPORT not sent: %s", exc)
            return None
        if "Status" not in status:
            return None
        return int(status.Status)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # a peer that is gone: nothing more to do
            if self.assoc.is_established:
                self.assoc.release()
            else:
                self.assoc.abort()
