"""wlmd's blocking requestor against pynetdicom acceptors on 127.0.0.1: what it
proposes, what it reports when there is no association, and every wait bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ImplicitVRLittleEndian
from pynetdicom.dimse_primitives import N_EVENT_REPORT
from pynetdicom.dsutils import encode

from tests.helpers import servers
from tests.helpers.upsevents import EVENT, PUSH, Receiver
from wlmd.association.requestor import AssociationFailed, Proposal, Requestor, Timeouts

FAST = Timeouts(connect=2.0, acse=2.0, dimse=1.0)


def proposal(called: str, roles: bool = True) -> Proposal:
    return Proposal(
        "WLMD",
        called,
        [(EVENT, [ImplicitVRLittleEndian])],
        {EVENT: (False, True)} if roles else {},
        "2.25.1",
        "WLMD_TEST",
    )


def report(uid: str = "1.2.3") -> N_EVENT_REPORT:
    request = N_EVENT_REPORT()
    request.MessageID = 7
    request.AffectedSOPClassUID = PUSH
    request.AffectedSOPInstanceUID = uid
    request.EventTypeID = 1
    info = Dataset()
    info.ProcedureStepState = "SCHEDULED"
    request.EventInformation = BytesIO(encode(info, True, True) or b"")
    return request


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    started = Receiver("EVENTS", servers.free_port()).start()
    yield started
    started.stop()


def test_report_on_the_event_context_with_role_selection(receiver: Receiver) -> None:
    link = Requestor.connect("127.0.0.1", receiver.port, proposal("EVENTS"), FAST)
    context = link.accepted[EVENT]
    response = link.request(context, report())
    link.release()
    assert (response.Status, response.MessageIDBeingRespondedTo) == (0, 7)
    (got,) = receiver.reports
    assert (got.uid, got.sop_class, got.info.ProcedureStepState) == ("1.2.3", PUSH, "SCHEDULED")
    assert not link.open


def test_without_role_selection_the_receiver_refuses_the_context(receiver: Receiver) -> None:
    link = Requestor.connect("127.0.0.1", receiver.port, proposal("EVENTS", roles=False), FAST)
    assert link.accepted == {}
    link.release()
    assert receiver.refused_contexts == 1


def test_no_listener_is_one_line() -> None:
    with pytest.raises(AssociationFailed, match="cannot connect: Connection refused"):
        Requestor.connect("127.0.0.1", servers.free_port(), proposal("EVENTS"), FAST)


def test_rejection_names_result_source_and_reason(receiver: Receiver) -> None:
    receiver._server.ae.require_called_aet = True
    with pytest.raises(AssociationFailed, match=r"rejected \(result 1, source 1, reason 7\)"):
        Requestor.connect("127.0.0.1", receiver.port, proposal("SOMEONE"), FAST)


def test_a_response_slower_than_the_dimse_timeout_ends_the_association(
    receiver: Receiver,
) -> None:
    receiver.delay = 3.0
    link = Requestor.connect("127.0.0.1", receiver.port, proposal("EVENTS"), FAST)
    started = time.monotonic()
    with pytest.raises(AssociationFailed, match=r"no response within 1 s"):
        link.request(link.accepted[EVENT], report())
    assert time.monotonic() - started < 2.0
    assert not link.open
