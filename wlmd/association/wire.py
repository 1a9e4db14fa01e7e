"""Everything of the DICOM wire format that wlmd encodes or checks itself, in one place.

The upper layer PDUs (PS3.8 9.3) are decoded and, where they carry
structure (A-ASSOCIATE-RQ/AC), encoded by pynetdicom's codecs; what lives
here are the constants both the supervisor and the association layer check
(PDU types, size bounds), the fixed-size PDUs (A-ASSOCIATE-RJ, A-ABORT,
A-RELEASE-RP, PS3.8 9.3.4, 9.3.7, 9.3.8), and the two encoders on the hot
path: DIMSE response command sets (PS3.7 9.3 and 9.1.5, implicit VR little
endian, PS3.7 6.3.1) and P-DATA-TF PDUs (PS3.8 9.3.5, fragmented as the
peer's maximum length asks, PS3.8 D.1). Both are a few struct calls instead
of pydicom's ~0.3 ms per response, and are checked against pynetdicom's
decoders in tests/unit/association/test_pdata.py.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Sequence

from pynetdicom import pdu as pdu_codec

# --- PDU types (PS3.8 9.3.1) -----------------------------------------------------------
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_AC = 0x02
A_ASSOCIATE_RJ = 0x03
P_DATA_TF = 0x04
A_RELEASE_RQ = 0x05
A_RELEASE_RP = 0x06
A_ABORT = 0x07
PDU_NAMES = {
    A_ASSOCIATE_RQ: "A-ASSOCIATE-RQ",
    A_ASSOCIATE_AC: "A-ASSOCIATE-AC",
    A_ASSOCIATE_RJ: "A-ASSOCIATE-RJ",
    P_DATA_TF: "P-DATA-TF",
    A_RELEASE_RQ: "A-RELEASE-RQ",
    A_RELEASE_RP: "A-RELEASE-RP",
    A_ABORT: "A-ABORT",
}
#: every PDU starts with type, reserved byte and a 4-byte big-endian length
PDU_HEADER = 6

# --- bounds on what a peer can make us buffer ------------------------------------------
#: The largest non-P-DATA PDU we read: an A-ASSOCIATE-RQ proposing every SOP class
#: there is stays far below this.
MAX_ASSOCIATION_PDU = 65536
#: The largest DIMSE message (command set or data set, all fragments together).
#: A C-FIND identifier is a few kilobytes; this leaves room for anything legitimate.
MAX_DIMSE_MESSAGE = 1 << 20

# --- A-ABORT source and reason (PS3.8 9.3.8) -------------------------------------------
ABORT_SERVICE_USER = 0x00
ABORT_SERVICE_PROVIDER = 0x02
ABORT_REASON_NOT_SPECIFIED = 0x00
ABORT_UNRECOGNIZED_PDU = 0x01
#: DIMSE status: the operation is not supported for this SOP class (PS3.7 C.5.9)
UNRECOGNIZED_OPERATION = 0x0211
ABORT_UNEXPECTED_PDU = 0x02
ABORT_INVALID_PDU_PARAMETER = 0x06

# --- DIMSE (PS3.7 9.3, 10.3, E.1) ------------------------------------------------------
C_FIND_RQ = 0x0020
C_FIND_RSP = 0x8020
C_ECHO_RQ = 0x0030
C_ECHO_RSP = 0x8030
C_CANCEL_RQ = 0x0FFF
#: (0000,0800) Command Data Set Type: 0x0101 means "no data set", anything else one follows
NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0001

#: Write when this much is buffered: big enough for few system calls, small
#: enough that a modality sees the first responses at once.
FLUSH_AT = 64 * 1024
#: Fragment size when the peer sets no maximum PDU length (0 = unlimited).
UNLIMITED_FRAGMENT = 1024 * 1024


def first_byte_problem(first: int) -> str | None:
    """Why a connection whose first byte is ``first`` is no association request, or None.

    An HTTP request ("G" of GET), a TLS ClientHello (0x16) to a plain port or
    a port scanner's probe is recognised at its first byte and closed at once,
    instead of holding a worker until the ACSE timeout.
    """
    if first == A_ASSOCIATE_RQ:
        return None
    if first in PDU_NAMES:
        return f"{PDU_NAMES[first]} (PDU type 0x{first:02X}) before an association request, closed"
    shown = f" ({chr(first)!r})" if 0x20 < first < 0x7F else ""
    hint = " (a TLS ClientHello: the client uses TLS, this port does not)" if first == 0x16 else ""
    return f"not DICOM: first byte 0x{first:02X}{shown}{hint}, closed"


def associate_rj(result: int, source: int, reason: int) -> bytes:
    """An A-ASSOCIATE-RJ PDU (PS3.8 9.3.4): result, source and reason/diag."""
    return struct.pack(">BBLBBBB", A_ASSOCIATE_RJ, 0, 4, 0, result, source, reason)


def abort_pdu(source: int, reason: int = ABORT_REASON_NOT_SPECIFIED) -> bytes:
    """An A-ABORT PDU (PS3.8 9.3.8), by pynetdicom's encoder; the reason counts for source 2."""
    pdu = pdu_codec.A_ABORT_RQ()
    pdu.source = source
    pdu.reason_diagnostic = reason if source == ABORT_SERVICE_PROVIDER else 0
    return bytes(pdu.encode())


#: A-RELEASE-RP (PS3.8 9.3.7): fixed, encoded once
RELEASE_RP = bytes(pdu_codec.A_RELEASE_RP().encode())


def _element(element: int, value: bytes) -> bytes:
    """One command element, group 0000, implicit VR little endian (PS3.7 6.3.1)."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _us(value: int) -> bytes:
    return struct.pack("<H", value)


def response_command_set(
    command_field: int,
    sop_class_uid: str,
    message_id: int,
    status: int,
    *,
    data_set: bool = False,
    offending: Sequence[int] = (),
    error_comment: str = "",
) -> bytes:
    """The encoded command set of a DIMSE-C response (PS3.7 9.3.1.2, 9.3.2.2, 9.3.5.2).

    Elements in tag order: Affected SOP Class UID, Command Field, Message ID
    Being Responded To, Command Data Set Type, Status, and for failures the
    Offending Element (AT) and Error Comment (LO, at most 64 characters; PS3.7 C.4).
    """
    uid = sop_class_uid.encode("ascii", "replace")  # a fuzzed request's UID is echoed, never fatal
    if len(uid) % 2:
        uid += b"\x00"
    parts = [
        _element(0x0002, uid),
        _element(0x0100, _us(command_field)),
        _element(0x0120, _us(message_id)),
        _element(0x0800, _us(DATA_SET_PRESENT if data_set else NO_DATA_SET)),
        _element(0x0900, _us(status)),
    ]
    if offending:
        parts.append(
            _element(0x0901, b"".join(struct.pack("<HH", t >> 16, t & 0xFFFF) for t in offending))
        )
    if error_comment:
        comment = error_comment[:64].encode("ascii", "replace")
        if len(comment) % 2:
            comment += b" "
        parts.append(_element(0x0902, comment))
    body = b"".join(parts)
    return _element(0x0000, struct.pack("<I", len(body))) + body  # CommandGroupLength


def pending_command_set(sop_class_uid: str, message_id: int, status: int) -> bytes:
    """The encoded command set of a pending C-FIND-RSP (PS3.7 Table 9.3-3)."""
    return response_command_set(C_FIND_RSP, sop_class_uid, message_id, status, data_set=True)


#: PDU type, reserved, PDU length, PDV item length, context ID, message control header
_PDV_HEAD = struct.Struct(">BBIIBB")


class PDataWriter:
    """Buffers P-DATA-TF PDUs for one presentation context and writes them in batches.

    ``max_pdu`` is the peer's Maximum Length Received: the largest variable
    part of a P-DATA-TF PDU it accepts (0: no limit). Each PDV item costs 6
    bytes of it (length, context ID, message control header).
    """

    def __init__(self, sock: socket.socket, context_id: int, max_pdu: int | None) -> None:
        self.sock = sock
        self.context_id = context_id
        self.fragment = (max_pdu - 6) if max_pdu else UNLIMITED_FRAGMENT
        self.buffer = bytearray()
        #: batches written so far
        self.writes = 0

    def add(self, data: bytes, is_command: bool) -> None:
        """Queue one message part (command set or data set), fragmented as needed."""
        control = 0x01 if is_command else 0x00
        size = len(data)
        start = 0
        while True:
            chunk = data[start : start + self.fragment]
            start += len(chunk)
            last = start >= size
            header = bytes((self.context_id, control | (0x02 if last else 0x00)))
            item_length = len(chunk) + 2
            self.buffer += struct.pack(">BBII", P_DATA_TF, 0, item_length + 4, item_length)
            self.buffer += header
            self.buffer += chunk
            if last:
                break
        if len(self.buffer) >= FLUSH_AT:
            self.flush()

    def add_message(self, command: bytes, data: bytes) -> bool:
        """Queue a command set and its data set; True when a batch was written.

        The same PDUs as two :meth:`add` calls (one P-DATA-TF per message part,
        PS3.8 9.3.5), for the common case of a C-FIND pending response that fits
        one fragment each: two header packs and no per-fragment loop.
        """
        if len(command) > self.fragment or len(data) > self.fragment:
            writes = self.writes
            self.add(command, is_command=True)
            self.add(data, is_command=False)
            return self.writes != writes
        buffer, context, pack = self.buffer, self.context_id, _PDV_HEAD.pack
        buffer += pack(P_DATA_TF, 0, len(command) + 6, len(command) + 2, context, 0x03)
        buffer += command
        buffer += pack(P_DATA_TF, 0, len(data) + 6, len(data) + 2, context, 0x02)
        buffer += data
        if len(buffer) >= FLUSH_AT:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        if self.buffer:
            self.writes += 1
            self.sock.sendall(self.buffer)
            self.buffer.clear()
