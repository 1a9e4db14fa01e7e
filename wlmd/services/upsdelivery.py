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
``dcmups`` checks (0x0118 otherwise). The association is wlmd's own blocking
requestor (:mod:`wlmd.association.requestor`), which takes any UID, so the
trial UIDs need no registering with pynetdicom.

Which answer counts as delivered: Success and the Warning statuses (the
receiver took the report; PS3.7 C.4 and 10.1.1.1.8); a Failure status is
a receiver that refused it, which a retry may fix once its administrator
does (a wrong SOP class, a busy application), so it is retried with the
outbox's backoff like a subscriber that is down. Every step is bounded:
the connection, the A-ASSOCIATE-AC, each N-EVENT-REPORT response, the release.
"""

from __future__ import annotations

import ssl
from io import BytesIO

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom.dimse_primitives import N_EVENT_REPORT
from pynetdicom.dsutils import encode

from wlmd import __version__
from wlmd.association.dimse import Context
from wlmd.association.requestor import AssociationFailed, Proposal, Requestor, Timeouts
from wlmd.services.ups import EVENT, PUSH, TRIAL_EVENT, TRIAL_PUSH
from wlmd.services.upssubscribers import Subscriber
from wlmd.state.outbox import Delivery
from wlmd.ups.subscriptions import EventType

__all__ = ["AssociationFailed", "EventLink", "Timeouts", "delivered"]

#: wlmd's Implementation Class UID and Version Name, as the worker sends them
#: (wlmd.process.worker; services do not import the process layer).
IMPLEMENTATION_CLASS_UID = "2.25.272335116079396712994913927510549020011"
IMPLEMENTATION_VERSION_NAME = f"WLMD_{__version__}"[:16]

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


def delivered(status: int) -> bool:
    """Success or Warning: the subscriber took the report (PS3.7 C.1, C.2)."""
    return status in (0x0000, 0x0001, 0x0107, 0x0116) or 0xB000 <= status <= 0xBFFF


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

    def __init__(self, requestor: Requestor, context: Context) -> None:
        self.requestor = requestor
        self.context = context
        self._message_id = 0

    @classmethod
    def open(
        cls,
        subscriber: Subscriber,
        calling_ae: str,
        timeouts: Timeouts,
        tls: ssl.SSLContext | None = None,
    ) -> EventLink:
        """AssociationFailed when there is no association or no Event context in it."""
        proposal = Proposal(
            calling_ae,
            subscriber.ae_title,
            [(uid, SYNTAXES) for uid in (EVENT, TRIAL_EVENT)],
            {uid: (False, True) for uid in (EVENT, TRIAL_EVENT)},
            IMPLEMENTATION_CLASS_UID,
            IMPLEMENTATION_VERSION_NAME,
        )
        requestor = Requestor.connect(subscriber.host, subscriber.port, proposal, timeouts, tls)
        for uid in (EVENT, TRIAL_EVENT):
            if uid in requestor.accepted:
                return cls(requestor, requestor.accepted[uid])
        requestor.release()
        raise AssociationFailed("the UPS Event SOP class was not accepted (final nor trial)")

    @property
    def family(self) -> str:
        return "trial" if self.context.abstract_syntax == TRIAL_EVENT else "final"

    def send(self, delivery: Delivery) -> int:
        """The subscriber's status; AssociationFailed when no answer came (it is closed)."""
        self._message_id = self._message_id % 65535 + 1
        request = N_EVENT_REPORT()
        request.MessageID = self._message_id
        request.AffectedSOPClassUID = PUSH_OF[self.context.abstract_syntax]
        request.AffectedSOPInstanceUID = delivery.uid
        request.EventTypeID = int(delivery.type)
        implicit = self.context.transfer_syntax == ImplicitVRLittleEndian
        request.EventInformation = BytesIO(encode(delivery.info, implicit, True) or b"")
        response = self.requestor.request(self.context, request)
        status = getattr(response, "Status", None)
        answered = getattr(response, "MessageIDBeingRespondedTo", None)
        if not isinstance(response, N_EVENT_REPORT) or status is None:
            problem = "a response without a status"
        elif answered != request.MessageID:
            problem = f"a response to message {answered}, not {request.MessageID}"
        else:
            return int(status)
        self.requestor.abort()
        raise AssociationFailed(problem)

    def close(self) -> None:
        self.requestor.release()
