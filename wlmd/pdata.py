"""Pending C-FIND responses as bytes on the wire (PS3.7 section 9.3, PS3.8 section 9.3.5).

The fast path of :mod:`wlmd.worker`: a C-FIND-RSP command set encoded once
per query, and P-DATA-TF PDUs assembled and written in batches. Everything
else on the association (negotiation, requests, the final response, release)
stays with pynetdicom.
"""

from __future__ import annotations

import socket
import struct

C_FIND_RSP = 0x8020
DATA_SET_PRESENT = 0x0001  # (0000,0800): anything but 0x0101
_P_DATA_TF = 0x04
#: Write when this much is buffered: big enough for few system calls, small
#: enough that a modality sees the first responses at once.
FLUSH_AT = 64 * 1024
#: Fragment size when the peer sets no maximum PDU length (0 = unlimited).
UNLIMITED_FRAGMENT = 1024 * 1024


def _element(element: int, value: bytes) -> bytes:
    """One command element, group 0000, implicit VR little endian (PS3.7 6.3.1)."""
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def pending_command_set(sop_class_uid: str, message_id: int, status: int) -> bytes:
    """The encoded command set of a pending C-FIND-RSP (PS3.7 Table 9.3-3)."""
    uid = sop_class_uid.encode("ascii")
    if len(uid) % 2:
        uid += b"\x00"
    body = b"".join(
        (
            _element(0x0002, uid),  # AffectedSOPClassUID
            _element(0x0100, struct.pack("<H", C_FIND_RSP)),  # CommandField
            _element(0x0120, struct.pack("<H", message_id)),  # MessageIDBeingRespondedTo
            _element(0x0800, struct.pack("<H", DATA_SET_PRESENT)),  # CommandDataSetType
            _element(0x0900, struct.pack("<H", status)),  # Status
        )
    )
    return _element(0x0000, struct.pack("<I", len(body))) + body  # CommandGroupLength


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
            self.buffer += struct.pack(">BBII", _P_DATA_TF, 0, item_length + 4, item_length)
            self.buffer += header
            self.buffer += chunk
            if last:
                break
        if len(self.buffer) >= FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.sock.sendall(self.buffer)
            self.buffer.clear()
