"""pynetdicom's association socket with bounds on what a peer can make us buffer.

pynetdicom reads a PDU's 6-byte header, then as many bytes as the header
claims, whatever -pdu says; and it joins the fragments of a DIMSE message
(PS3.8 E.2: PDV items without the "last fragment" bit) however many there
are. A peer could make a worker buffer gigabytes either way: announce a
4 GB PDU, or stream P-DATA fragments of a message that never ends. Both are
refused here before the bytes are kept, which pynetdicom treats as a closed
transport: the association ends and the worker exits.

It also holds the PDU types (PS3.8 9.3.1) the supervisor and the worker check
before pynetdicom reads anything.
"""

from __future__ import annotations

import logging
import struct

from pynetdicom.transport import AssociationSocket

LOG = logging.getLogger("wlmd.worker")

#: The largest non-P-DATA PDU we read: an A-ASSOCIATE-RQ proposing every SOP class
#: there is stays far below this.
MAX_ASSOCIATION_PDU = 65536
#: The largest DIMSE message (command set or data set, all fragments together).
#: A C-FIND identifier is a few kilobytes; this leaves room for anything legitimate.
MAX_DIMSE_MESSAGE = 1 << 20
_P_DATA_TF = 0x04
_HEADER = 6

#: PS3.8 9.3.1: the PDU types there are; an association requester's first PDU
#: must be an A-ASSOCIATE-RQ (PS3.8 9.2, state Sta2 of the acceptor).
A_ASSOCIATE_RQ = 0x01
A_ASSOCIATE_RJ = 0x03
PDU_NAMES = {
    0x01: "A-ASSOCIATE-RQ",
    0x02: "A-ASSOCIATE-AC",
    0x03: "A-ASSOCIATE-RJ",
    0x04: "P-DATA-TF",
    0x05: "A-RELEASE-RQ",
    0x06: "A-RELEASE-RP",
    0x07: "A-ABORT",
}


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


class BoundedAssociationSocket(AssociationSocket):
    """An :class:`AssociationSocket` that refuses oversized PDUs and DIMSE messages.

    A P-DATA-TF body longer than -pdu (any other PDU: 64 KiB) fails before
    anything of it is read; a command set or data set whose fragments add up
    to more than :data:`MAX_DIMSE_MESSAGE` fails at the PDU that crosses it.
    """

    #: -pdu: the longest P-DATA-TF we announced we accept (PS3.8 D.1)
    max_pdu = MAX_ASSOCIATION_PDU
    #: the PDU type of the header just read: the next read is its body
    _pending: int | None = None
    #: bytes of the DIMSE message being reassembled so far
    _message = 0

    def recv(self, nr_bytes: int) -> bytearray:
        # pynetdicom reads a header (6 bytes), then the body it announces.
        if self._pending is None:
            data = super().recv(nr_bytes)
            if nr_bytes == _HEADER and len(data) == _HEADER:
                self._pending = data[0]
            return data
        kind, self._pending = self._pending, None
        limit = self.max_pdu if kind == _P_DATA_TF else MAX_ASSOCIATION_PDU
        if nr_bytes > limit:
            LOG.warning(
                "PDU of %d bytes refused (the limit is %d, see -pdu): closing the connection",
                nr_bytes,
                limit,
            )
            raise OSError(f"PDU of {nr_bytes} bytes exceeds the limit of {limit}")
        data = super().recv(nr_bytes)
        if kind == _P_DATA_TF:
            self._count_fragments(data)
        return data

    def _count_fragments(self, body: bytes | bytearray) -> None:
        """Add up PDV items until one is a last fragment; refuse a message that grows too long."""
        pos = 0
        while pos + _HEADER <= len(body):
            item_length, _context, control = struct.unpack_from(">LBB", body, pos)
            self._message += max(item_length - 2, 0)
            if self._message > MAX_DIMSE_MESSAGE:
                LOG.warning(
                    "DIMSE message longer than %d bytes refused: closing the connection",
                    MAX_DIMSE_MESSAGE,
                )
                raise OSError(f"DIMSE message exceeds {MAX_DIMSE_MESSAGE} bytes")
            if control & 0x02:  # last fragment of a command set or data set
                self._message = 0
            pos += 4 + item_length
