"""Verification (C-ECHO, PS3.4 Annex A, PS3.7 9.1.5): always success, one info line."""

from __future__ import annotations

import logging

from pydicom.uid import UID

from wlmd.association.dimse import Request, Responder, Service
from wlmd.association.report import AssociationLog
from wlmd.association.wire import C_ECHO_RQ

LOG = logging.getLogger("wlmd.worker")

VERIFICATION = UID("1.2.840.10008.1.1")


def echo_service(log: AssociationLog) -> Service:
    def on_echo(request: Request, responder: Responder) -> None:
        LOG.info("C-ECHO from %s: success", log.calling)
        responder.respond(0x0000)

    return Service("verification", (VERIFICATION,), {C_ECHO_RQ: on_echo})
