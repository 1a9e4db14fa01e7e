"""A UPS requestor that behaves on the wire as dcm4che2's ``dcmups`` does (see ups-clients.md).

pynetdicom's SCU picks the presentation context from the SOP Class UID it is
given, so it cannot send what ``dcmups`` sends: every abstract syntax proposed
twice with one transfer syntax each, the trial Event class always, and the
trial *Push* UID as the command's SOP class on whichever context carries the
N-message. This client builds the PDUs with pynetdicom's codecs (encoders and
decoders that are not wlmd's) and sends them itself; every socket operation
is bounded.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import dimse_messages, dimse_primitives
from pynetdicom.dsutils import decode, encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import build_context

IMPLICIT = "1.2.840.10008.1.2"
EXPLICIT = "1.2.840.10008.1.2.1"
TRIAL_PUSH = "1.2.840.10008.5.1.4.34.4.1"
TRIAL_WATCH = "1.2.840.10008.5.1.4.34.4.2"
TRIAL_PULL = "1.2.840.10008.5.1.4.34.4.3"
TRIAL_EVENT = "1.2.840.10008.5.1.4.34.4.4"
MAX_PDU = 16384
TIMEOUT = 10.0


class Refused(Exception):
    """The association was rejected or aborted."""


@dataclass
class Response:
    primitive: Any
    data_set: Dataset | None

    @property
    def status(self) -> int:
        return int(self.primitive.Status)


class DcmupsLike:
    """One association proposing ``classes`` as dcmups does; N-messages on chosen contexts."""

    def __init__(
        self, port: int, classes: tuple[str, ...], called: str = "UPS", calling: str = "DCMUPSSCU"
    ) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.sock.settimeout(TIMEOUT)
        # A request is two P-DATA-TF PDUs (command, data set): without this the second
        # waits for the server's delayed ACK of the first (Nagle), ~40 ms per request.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._message_id = 0
        contexts = []
        for uid in (*classes, TRIAL_EVENT):
            for syntax in (IMPLICIT, EXPLICIT):
                contexts.append(build_context(uid, [syntax]))
        for number, cx in enumerate(contexts):
            cx.context_id = 2 * number + 1
        rq = A_ASSOCIATE()
        rq.application_context_name = "1.2.840.10008.3.1.1.1"
        rq.calling_ae_title = calling
        rq.called_ae_title = called
        rq.presentation_context_definition_list = contexts
        length = MaximumLengthNotification()
        length.maximum_length_received = MAX_PDU
        uid = ImplementationClassUIDNotification()
        uid.implementation_class_uid = "1.2.40.0.13.1.1"
        rq.user_information = [length, uid]
        pdu = A_ASSOCIATE_RQ()
        pdu.from_primitive(rq)
        self.sock.sendall(bytes(pdu.encode()))
        kind, data = self._read_pdu()
        if kind != 0x02:
            self.sock.close()
            raise Refused(f"PDU type 0x{kind:02X} instead of A-ASSOCIATE-AC")
        ac = A_ASSOCIATE_AC()
        ac.decode(data)
        #: abstract syntax -> (context id, transfer syntax) of the first accepted context
        self.accepted: dict[str, tuple[int, str]] = {}
        proposed = {cx.context_id: cx.abstract_syntax for cx in contexts}
        for cx in ac.to_primitive().presentation_context_definition_results_list:
            if cx.result == 0 and str(proposed[cx.context_id]) not in self.accepted:
                syntax = str(cx.transfer_syntax[0])
                self.accepted[str(proposed[cx.context_id])] = (cx.context_id, syntax)

    def _read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise Refused("connection closed")
            data += chunk
        return data

    def _read_pdu(self) -> tuple[int, bytes]:
        header = self._read_exactly(6)
        length = struct.unpack(">L", header[2:6])[0]
        return header[0], header + self._read_exactly(length)

    def request(
        self, kind: str, on: str, data_set: Dataset | None = None, **fields: Any
    ) -> Response:
        """Send an N-*/C-FIND request (``kind`` like "N_ACTION") on ``on``'s context; the final
        response (C-FIND pendings are skipped and counted in ``self.pending``)."""
        context_id, syntax = self.accepted[on]
        self._message_id += 1
        primitive = getattr(dimse_primitives, kind)()
        primitive.MessageID = self._message_id
        for name, value in fields.items():
            setattr(primitive, name, value)
        implicit = syntax == IMPLICIT
        if data_set is not None:
            payload = BytesIO(encode(data_set, implicit, True) or b"")
            name = {"N_ACTION": "ActionInformation", "N_SET": "ModificationList"}.get(
                kind, "Identifier" if kind == "C_FIND" else "AttributeList"
            )
            setattr(primitive, name, payload)
        message = getattr(dimse_messages, f"{kind}_RQ")()
        message.primitive_to_message(primitive)
        for p_data in message.encode_msg(context_id, MAX_PDU):
            self.sock.sendall(bytes(P_DATA_TF(p_data).encode()))
        self.pending: list[Dataset] = []
        while True:
            response = self._read_message(implicit)
            if kind == "C_FIND" and response.status in (0xFF00, 0xFF01):
                assert response.data_set is not None
                self.pending.append(response.data_set)
                continue
            return response

    def _read_message(self, implicit: bool) -> Response:
        message = dimse_messages.DIMSEMessage()
        for _ in range(1000):
            kind, data = self._read_pdu()
            if kind != 0x04:
                raise Refused(f"PDU type 0x{kind:02X} during a DIMSE exchange")
            pdu = P_DATA_TF()
            pdu.decode(data)
            if message.decode_msg(pdu.to_primitive()):
                break
        else:
            raise AssertionError("no complete DIMSE message in 1000 PDUs")
        primitive = message.message_to_primitive()
        data_set = None
        for name in ("AttributeList", "ActionReply", "Identifier", "EventInformation"):
            stream = getattr(primitive, name, None)
            if isinstance(stream, BytesIO) and stream.getvalue():
                data_set = decode(stream, implicit, True)
        return Response(primitive, data_set)

    def release(self) -> None:
        try:
            self.sock.sendall(bytes.fromhex("05000000000400000000"))
            kind, _ = self._read_pdu()
            assert kind == 0x06, f"PDU type 0x{kind:02X} instead of A-RELEASE-RP"
        finally:
            self.sock.close()
