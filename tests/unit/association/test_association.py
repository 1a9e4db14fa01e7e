"""The association layer (wlmd.association) on a real socket pair, one association per test.

The session runs in a thread (as the worker's main loop would), the test is
the requestor: PDUs are built with pynetdicom's encoders and the bench's raw
client, answers are decoded with pynetdicom's decoders. Every read and join
is bounded.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    AsynchronousOperationsWindowNegotiation,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import build_context

from tests.helpers.rawclient import identifier, mwlclient
from wlmd.association import runtime, wire
from wlmd.association.dimse import Request, Responder, Service
from wlmd.association.link import Link
from wlmd.association.negotiation import (
    AcceptorIdentity,
    AssociateRequest,
    decode_request,
    negotiate,
)

VERIFICATION = "1.2.840.10008.1.1"
MWL = "1.2.840.10008.5.1.4.31"
CT = "1.2.840.10008.5.1.4.1.1.2"
IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
BIG = "1.2.840.10008.1.2.2"
JPEG = "1.2.840.10008.1.2.4.50"
WAIT = 5.0
IDENTITY = AcceptorIdentity("2.25.1234", "WLMD_TEST", 16384)


def settings(**changes: object) -> runtime.Settings:
    values: dict[str, object] = {
        "acse_timeout": WAIT,
        "dimse_timeout": WAIT,
        "identity": IDENTITY,
        "transfer_syntaxes": [EXPLICIT, BIG, IMPLICIT],
    }
    values.update(changes)
    return runtime.Settings(**values)  # type: ignore[arg-type]


@dataclass
class Hooks(runtime.Hooks):
    rejection: runtime.Rejection | None = None
    stop: bool = False
    events: list[str] = field(default_factory=list)
    #: what services() answers (None: those serve() was given)
    offered: list[Service] | None = None

    def admit(self, request: AssociateRequest) -> runtime.Rejection | None:
        self.events.append(f"admit {request.calling_ae_title}->{request.called_ae_title}")
        return self.rejection

    def services(self, request: AssociateRequest) -> list[Service] | None:
        return self.offered

    def stop_requested(self) -> bool:
        return self.stop

    def stopping(self) -> None:
        self.events.append("stopping")

    def stop_expired(self) -> None:
        self.events.append("expired")


def echo(request: Request, responder: Responder) -> None:
    responder.respond(0x0000)


def pendings_until_cancelled(request: Request, responder: Responder) -> None:
    """Pending responses, each flushed, until the requestor's C-CANCEL is seen (bounded)."""
    sock = responder.session.link.sock
    deadline = time.monotonic() + WAIT
    while not responder.cancel_requested and time.monotonic() < deadline:
        responder.send(wire.pending_command_set(MWL, request.message_id, 0xFF00), b"")
        responder.flush()
        socket_ready(sock, 0.05)
    responder.respond(0xFE00 if responder.cancel_requested else 0x0000)


def socket_ready(sock: socket.socket, timeout: float) -> None:
    import select

    select.select([sock], [], [], timeout)


SERVICES = [
    Service("echo", (VERIFICATION,), {wire.C_ECHO_RQ: echo}),
    Service("find", (MWL,), {wire.C_FIND_RQ: pendings_until_cancelled}),
]


@dataclass
class Running:
    client: socket.socket
    hooks: Hooks
    thread: threading.Thread
    result: list[runtime.Session]
    stop_w: int

    def recv_pdu(self) -> tuple[int, bytes]:
        """One whole PDU from the server (header included); (-1, b"") at EOF."""
        data = b""
        while len(data) < 6 or len(data) < 6 + int.from_bytes(data[2:6], "big"):
            need = (
                6 - len(data) if len(data) < 6 else 6 + int.from_bytes(data[2:6], "big") - len(data)
            )
            chunk = self.client.recv(need)
            if not chunk:
                return (-1, data)
            data += chunk
        return data[0], data

    def session(self) -> runtime.Session:
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the session did not end"
        return self.result[0]


@contextmanager
def serving(hooks: Hooks | None = None, **changes: object) -> Iterator[Running]:
    ours, theirs = socket.socketpair()
    ours.settimeout(WAIT)
    stop_r, stop_w = os.pipe2(os.O_NONBLOCK)
    hooks = hooks or Hooks()
    result: list[runtime.Session] = []

    def run() -> None:
        result.append(
            runtime.serve(Link(theirs, stop_fd=stop_r), SERVICES, settings(**changes), hooks)
        )
        theirs.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield Running(ours, hooks, thread, result, stop_w)
    finally:
        ours.close()
        thread.join(WAIT)
        os.close(stop_r)
        os.close(stop_w)


def rich_rq(*, role: bool = False, extras: bool = False) -> bytes:
    """An A-ASSOCIATE-RQ with four contexts (two to refuse) and, optionally, extended items."""
    p = A_ASSOCIATE()
    p.application_context_name = "1.2.840.10008.3.1.1.1"
    p.calling_ae_title = "UNIT"
    p.called_ae_title = "WLMD"
    contexts = [
        build_context(VERIFICATION, [IMPLICIT]),
        build_context(MWL, [IMPLICIT, EXPLICIT, BIG]),
        build_context(CT, [IMPLICIT]),
        build_context(MWL, [JPEG]),
    ]
    for n, cx in enumerate(contexts):
        cx.context_id = 2 * n + 1
    p.presentation_context_definition_list = contexts
    items: list[object] = []
    m = MaximumLengthNotification()
    m.maximum_length_received = 8192
    c = ImplementationClassUIDNotification()
    c.implementation_class_uid = "1.2.3.4"
    items += [m, c]
    if role:
        r = SCP_SCU_RoleSelectionNegotiation()
        r.sop_class_uid = MWL
        r.scu_role, r.scp_role = True, True
        items.append(r)
    if extras:
        a = AsynchronousOperationsWindowNegotiation()
        a.maximum_number_operations_invoked = 5
        a.maximum_number_operations_performed = 5
        u = UserIdentityNegotiation()
        u.user_identity_type = 2
        u.positive_response_requested = True
        u.primary_field, u.secondary_field = b"user", b"secret"
        items += [a, u]
    p.user_information = items
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(p)
    return bytes(pdu.encode())


def decode_ac(data: bytes) -> A_ASSOCIATE:
    pdu = A_ASSOCIATE_AC()
    pdu.decode(data)
    return pdu.to_primitive()


def associate(run: Running, rq: bytes | None = None) -> A_ASSOCIATE:
    run.client.sendall(rq or rich_rq())
    kind, data = run.recv_pdu()
    assert kind == wire.A_ASSOCIATE_AC, data
    return decode_ac(data)


def echo_rq(context_id: int = 1, message_id: int = 7) -> bytes:
    """A C-ECHO-RQ as one P-DATA-TF PDU (command set, implicit VR little endian)."""
    uid = VERIFICATION.encode() + b"\0"
    body = (
        struct.pack("<HHI", 0, 0x0002, len(uid)) + uid
        + struct.pack("<HHIH", 0, 0x0100, 2, wire.C_ECHO_RQ)
        + struct.pack("<HHIH", 0, 0x0110, 2, message_id)
        + struct.pack("<HHIH", 0, 0x0800, 2, wire.NO_DATA_SET)
    )  # fmt: skip
    command = struct.pack("<HHII", 0, 0, 4, len(body)) + body
    item = struct.pack(">LBB", len(command) + 2, context_id, 0x03) + command
    return struct.pack(">BBL", wire.P_DATA_TF, 0, len(item)) + item


def next_command(run: Running) -> dict[int, int]:
    """The next response's command fields, skipping data set PDUs (bounded)."""
    for _ in range(100):
        kind, data = run.recv_pdu()
        assert kind == wire.P_DATA_TF, data
        if data[11] & 0x01:  # message control header: a command fragment
            return command_of(data)
    raise AssertionError("no command set in 100 PDUs")


def command_of(data: bytes) -> dict[int, int]:
    pdu = P_DATA_TF()
    pdu.decode(data)
    (item,) = pdu.presentation_data_value_items
    return mwlclient._command_fields(item.data[1:])


# --- negotiation ------------------------------------------------------------------------------
@pytest.mark.parametrize("extras", [False, True])
def test_negotiation_prefers_our_transfer_syntax_and_refuses_what_is_not_served(
    extras: bool,
) -> None:
    with serving() as run:
        ac = associate(run, rich_rq(role=extras, extras=extras))
        results = {
            cx.context_id: (cx.result, list(cx.transfer_syntax))
            for cx in ac.presentation_context_definition_results_list
        }
        assert results == {
            1: (0, [IMPLICIT]),
            3: (0, [EXPLICIT]),  # ours first, not the requestor's implicit VR
            5: (3, [IMPLICIT]),  # abstract syntax not supported
            7: (4, [JPEG]),  # transfer syntaxes not supported
        }
        kinds = [type(item).__name__ for item in ac.user_information]
        # as pynetdicom answered: no role, async ops or user identity response items
        assert kinds == [
            "MaximumLengthNotification",
            "ImplementationClassUIDNotification",
            "ImplementationVersionNameNotification",
        ]
        assert ac.maximum_length_received == 16384
        assert ac.implementation_class_uid == "2.25.1234"
        (version,) = [
            i for i in ac.user_information if isinstance(i, ImplementationVersionNameNotification)
        ]
        assert version.implementation_version_name == "WLMD_TEST"
        run.client.sendall(bytes.fromhex("05000000000400000000"))
        assert run.recv_pdu() == (wire.A_RELEASE_RP, wire.RELEASE_RP)
        assert run.session().outcome == "released"


def test_the_hooks_services_decide_what_is_negotiated() -> None:
    """A called AE title that offers only Verification: the MWL context is refused (3)."""
    with serving(Hooks(offered=[SERVICES[0]])) as run:
        ac = associate(run)
        results = {
            cx.context_id: cx.result for cx in ac.presentation_context_definition_results_list
        }
        assert results == {1: 0, 3: 3, 5: 3, 7: 3}
        run.client.sendall(echo_rq(message_id=9))
        fields = command_of(run.recv_pdu()[1])
        assert (fields[0x0100], fields[0x0900]) == (wire.C_ECHO_RSP, 0)


def test_a_failing_handler_aborts_the_association_not_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(request: Request, responder: Responder) -> None:
        raise TypeError("a bug in a service")

    offered = [Service("echo", (VERIFICATION,), {wire.C_ECHO_RQ: broken})]
    with caplog.at_level(logging.ERROR, "wlmd.worker"), serving(Hooks(offered=offered)) as run:
        associate(run)
        run.client.sendall(echo_rq())
        assert run.recv_pdu()[0] == wire.A_ABORT
        assert run.session().outcome == "aborted"
    assert "the echo service failed: association aborted" in caplog.text
    assert "TypeError: a bug in a service" in caplog.text


def n_delete_rq(context_id: int, message_id: int) -> bytes:
    """An N-DELETE-RQ for Verification, encoded by pynetdicom: an operation no service serves."""
    from pynetdicom.dimse_messages import N_DELETE_RQ
    from pynetdicom.dimse_primitives import N_DELETE

    primitive = N_DELETE()
    primitive.MessageID = message_id
    primitive.RequestedSOPClassUID = VERIFICATION
    primitive.RequestedSOPInstanceUID = "1.2.3"
    message = N_DELETE_RQ()
    message.primitive_to_message(primitive)
    return b"".join(bytes(P_DATA_TF(p).encode()) for p in message.encode_msg(context_id, 16384))


def test_an_operation_not_served_for_the_sop_class_is_answered_0211() -> None:
    """N-DELETE on the Verification context: status 0x0211 (unrecognized operation, PS3.7
    C.5.9), and the association goes on (the next request is answered)."""
    with serving() as run:
        associate(run)
        run.client.sendall(n_delete_rq(context_id=1, message_id=11))
        fields = command_of(run.recv_pdu()[1])
        assert (fields[0x0100], fields[0x0120], fields[0x0900]) == (0x8150, 11, 0x0211)
        run.client.sendall(echo_rq(context_id=1, message_id=12))
        fields = command_of(run.recv_pdu()[1])
        assert (fields[0x0120], fields[0x0900]) == (12, 0)


def test_rejection_is_an_a_associate_rj_and_the_end() -> None:
    hooks = Hooks(rejection=runtime.Rejection(1, 1, 7))
    with serving(hooks) as run:
        run.client.sendall(rich_rq())
        assert run.recv_pdu() == (wire.A_ASSOCIATE_RJ, bytes.fromhex("03000000000400010107"))
        assert run.recv_pdu()[0] == -1  # closed
        assert hooks.events == ["admit UNIT->WLMD"]
        assert not run.session().is_established


# --- PDU sequences ----------------------------------------------------------------------------
def test_echo_then_release() -> None:
    with serving() as run:
        associate(run)
        run.client.sendall(echo_rq(message_id=7))
        _kind, data = run.recv_pdu()
        fields = command_of(data)
        assert (fields[0x0100], fields[0x0120], fields[0x0900]) == (wire.C_ECHO_RSP, 7, 0)
        run.client.sendall(bytes.fromhex("05000000000400000000"))
        assert run.recv_pdu()[0] == wire.A_RELEASE_RP
        assert run.session().outcome == "released"


def test_peer_abort_ends_the_association(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "wlmd.worker"), serving() as run:
        associate(run)
        run.client.sendall(wire.abort_pdu(wire.ABORT_SERVICE_USER))
        assert run.recv_pdu()[0] == -1  # closed, nothing sent back (PS3.8 AA-3)
        assert run.session().outcome == "aborted"
    assert not caplog.records, caplog.text


@pytest.mark.parametrize(
    ("pdu", "reason"),
    [
        (struct.pack(">BBL", 0x09, 0, 4) + bytes(4), wire.ABORT_UNRECOGNIZED_PDU),
        (rich_rq(), wire.ABORT_UNEXPECTED_PDU),  # a second A-ASSOCIATE-RQ
        # a PDV item claiming 500 bytes in a 10-byte P-DATA-TF
        (struct.pack(">BBL", 4, 0, 10) + struct.pack(">LBB", 500, 1, 3) + bytes(4),
         wire.ABORT_INVALID_PDU_PARAMETER),
    ],
)  # fmt: skip
def test_a_pdu_out_of_place_is_answered_with_a_provider_abort(
    pdu: bytes, reason: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "wlmd.worker"), serving() as run:
        associate(run)
        run.client.sendall(pdu)
        assert run.recv_pdu() == (wire.A_ABORT, wire.abort_pdu(wire.ABORT_SERVICE_PROVIDER, reason))
        assert run.session().outcome == "aborted"
    assert len(caplog.records) == 1, caplog.text


def test_a_message_on_a_refused_context_is_aborted() -> None:
    with serving() as run:
        associate(run)
        run.client.sendall(echo_rq(context_id=5))  # context 5 (CT) was refused
        assert run.recv_pdu()[0] == wire.A_ABORT
        assert run.session().outcome == "aborted"


# --- bounds -----------------------------------------------------------------------------------
def test_a_p_data_longer_than_our_maximum_is_refused_from_its_header(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, "wlmd.worker"), serving() as run:
        associate(run)
        run.client.sendall(struct.pack(">BBL", 4, 0, 16385))  # one more than -pdu, no body
        run.session()
    assert "PDU of 16385 bytes refused (the limit is 16384, see -pdu)" in caplog.text


def test_an_endless_dimse_message_is_refused() -> None:
    fragment = struct.pack(">LBB", 16000 + 2, 3, 0x00) + bytes(16000)  # data, never the last
    pdu = struct.pack(">BBL", 4, 0, len(fragment)) + fragment
    with serving() as run:
        associate(run)
        sent = 0
        with pytest.raises(OSError):
            while sent < 4 * wire.MAX_DIMSE_MESSAGE:
                run.client.sendall(pdu)
                sent += len(pdu)
                if run.result:  # ended: the next sendall fails
                    run.client.sendall(pdu)
        assert sent < 2 * wire.MAX_DIMSE_MESSAGE  # cut off near the bound, not later
        assert run.session().outcome == "aborted"


# --- C-CANCEL, timeouts, stop -----------------------------------------------------------------
def test_cancel_is_seen_between_pending_responses() -> None:
    with serving() as run:
        associate(run, mwlclient.associate_rq("WLMD", "UNIT", 16384))  # MWL on context 1
        run.client.sendall(mwlclient.find_rq(9, identifier({"PatientID": "X"})))
        assert next_command(run)[0x0900] == 0xFF00  # a pending response arrived
        run.client.sendall(cancel_rq(9))
        final = None
        for _ in range(1000):  # pendings sent before the cancel was read, then the final
            status = next_command(run)[0x0900]
            if status != 0xFF00:
                final = status
                break
        assert final == 0xFE00
        run.client.sendall(mwlclient.RELEASE_RQ)
        assert run.recv_pdu()[0] == wire.A_RELEASE_RP
        assert run.session().outcome == "released"


def cancel_rq(message_id: int, context_id: int = 1) -> bytes:
    body = (
        struct.pack("<HHIH", 0, 0x0100, 2, wire.C_CANCEL_RQ)
        + struct.pack("<HHIH", 0, 0x0120, 2, message_id)
        + struct.pack("<HHIH", 0, 0x0800, 2, wire.NO_DATA_SET)
    )  # fmt: skip
    command = struct.pack("<HHII", 0, 0, 4, len(body)) + body
    item = struct.pack(">LBB", len(command) + 2, context_id, 0x03) + command
    return struct.pack(">BBL", wire.P_DATA_TF, 0, len(item)) + item


def test_idle_association_is_aborted_after_the_dimse_timeout() -> None:
    with serving(dimse_timeout=0.3) as run:
        associate(run)
        started = time.monotonic()
        assert run.recv_pdu()[0] == wire.A_ABORT
        assert 0.25 <= time.monotonic() - started < WAIT
        assert run.session().outcome == "aborted (idle, -td)"


def test_stop_request_gives_a_grace_period_then_aborts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "GRACEFUL_TIMEOUT", 0.3)
    hooks = Hooks(stop=True)
    with serving(hooks) as run:
        associate(run)
        run.client.sendall(echo_rq())  # still served during the grace period...
        os.write(run.stop_w, b"!")
        assert command_of(run.recv_pdu()[1])[0x0900] == 0
        started = time.monotonic()
        assert run.recv_pdu()[0] == wire.A_ABORT  # ...then aborted
        assert time.monotonic() - started < WAIT
        assert run.session().outcome == "aborted by wlmd (stopping)"
    assert hooks.events[1:] == ["stopping", "expired"]


def test_nothing_within_the_acse_timeout_closes_without_a_pdu() -> None:
    with serving(acse_timeout=0.2) as run:
        assert run.recv_pdu()[0] == -1
        assert run.session().request is None


# --- encoders ---------------------------------------------------------------------------------
def test_failure_response_command_set_decodes_with_pynetdicom() -> None:
    from io import BytesIO

    from pynetdicom.dsutils import decode

    command = wire.response_command_set(
        wire.C_FIND_RSP, MWL, 5, 0xA900, offending=(0x00100010, 0x00400100), error_comment="Bad"
    )
    ds = decode(BytesIO(command), True, True)
    assert ds.CommandGroupLength == len(command) - 12
    assert (ds.CommandField, ds.MessageIDBeingRespondedTo, ds.Status) == (0x8020, 5, 0xA900)
    assert ds.CommandDataSetType == wire.NO_DATA_SET
    assert list(ds.OffendingElement) == [0x00100010, 0x00400100]
    assert ds.ErrorComment == "Bad"
    assert ds.AffectedSOPClassUID == MWL


def test_supervisor_rejection_bytes_equal_pynetdicom_encoding() -> None:
    from pynetdicom.pdu import A_ASSOCIATE_RJ

    pdu = A_ASSOCIATE_RJ()
    pdu.result, pdu.source, pdu.reason_diagnostic = 2, 3, 2
    assert wire.associate_rj(2, 3, 2) == bytes(pdu.encode())


def test_a_non_ascii_sop_class_uid_is_echoed_not_fatal() -> None:
    """Found by the network fuzzer: a mutated Affected SOP Class UID with a byte 0x80."""
    command = wire.response_command_set(wire.C_FIND_RSP, "1.2.840.10008.5.1.4.3\x80", 1, 0)
    assert b"1.2.840.10008.5.1.4.3?" in command


def test_a_repeated_request_is_decoded_and_negotiated_once_with_a_fresh_answer() -> None:
    """decode_request/negotiate remember a request by its bytes: the answer a fresh
    decoding gives, for each offer, and the shared request is never changed."""
    rq = rich_rq(role=True, extras=True)
    fresh = decode_request.__wrapped__  # the undecorated decoder: no memory
    identity = IDENTITY
    syntaxes = [VERIFICATION, MWL]
    request = decode_request(rq)
    assert decode_request(rq) is request
    proposed = [list(cx.transfer_syntax) for cx in request.contexts]
    for preference in ([EXPLICIT, IMPLICIT], [IMPLICIT, EXPLICIT], [IMPLICIT]):
        first = negotiate(request, syntaxes, preference, identity)
        assert negotiate(decode_request(rq), syntaxes, preference, identity) is first
        expected = negotiate(fresh(rq), syntaxes, preference, identity)
        assert first.ac_pdu == expected.ac_pdu
        assert first.accepted == expected.accepted and first.proposed == expected.proposed
        assert [list(cx.transfer_syntax) for cx in request.contexts] == proposed
    one = negotiate(request, syntaxes, [EXPLICIT, IMPLICIT], identity)
    other = negotiate(request, syntaxes, [IMPLICIT, EXPLICIT], identity)
    assert one.accepted[3].transfer_syntax == EXPLICIT
    assert other.accepted[3].transfer_syntax == IMPLICIT
