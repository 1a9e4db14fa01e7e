"""DIMSE messages on an association: assembled from P-DATA-TF, handed to services, answered.

Requests are decoded by pynetdicom's codecs (:class:`pynetdicom.dimse_messages.DIMSEMessage`,
PS3.8 E.2 fragments, PS3.7 6.3 command sets; the plain C-FIND, C-ECHO and
C-CANCEL requests with less of it, :mod:`wlmd.association.command`);
responses are encoded by :mod:`wlmd.association.wire`.
A service sees a :class:`Request` and answers through a :class:`Responder`;
it knows nothing of PDUs, sockets or the other services.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom.dimse_messages import DIMSEMessage
from pynetdicom.dsutils import decode
from pynetdicom.pdu_primitives import P_DATA

from wlmd.association.command import CommandError, PlainCommand, read_plain
from wlmd.association.wire import (
    MAX_DIMSE_MESSAGE,
    PDataWriter,
    response_command_set,
)

if TYPE_CHECKING:
    from wlmd.association.runtime import Session

LOG = logging.getLogger("wlmd.worker")


class ProtocolError(Exception):
    """The peer broke the upper layer or DIMSE protocol: the association is aborted."""


@dataclass(frozen=True)
class Message:
    """A complete DIMSE message: its command field (PS3.7 E.1) and pynetdicom's primitive."""

    command_field: int
    primitive: Any
    context_id: int


@dataclass(frozen=True)
class Context:
    """An accepted presentation context (PS3.8 7.1.1.13)."""

    id: int
    abstract_syntax: str
    transfer_syntax: str


class MessageAssembler:
    """Joins P-DATA-TF PDUs into DIMSE messages; refuses one that grows past the bound.

    pynetdicom joins the fragments of a message (PDV items without the "last
    fragment" bit) however many there are; a peer streaming fragments of a
    message that never ends would make us buffer all of it. The PDV items
    are walked here first: they must tile the PDU exactly, and a command set
    or data set whose fragments add up to more than :data:`MAX_DIMSE_MESSAGE`
    fails at the PDU that crosses it.

    A plain C-FIND, C-ECHO or C-CANCEL request (a command set in one
    fragment, :mod:`wlmd.association.command`) is read without pynetdicom's
    DIMSEMessage; any other PDV sequence goes through DIMSEMessage, the
    PDVs of a plain request in progress replayed into it first.
    """

    def __init__(self) -> None:
        self._message: DIMSEMessage | None = None
        #: a plain request waiting for its data set, and its PDVs so far
        self._plain: PlainCommand | None = None
        self._pdvs: list[tuple[int, bytes]] = []
        self._size = 0

    def _check_items(self, pdu: bytes) -> list[tuple[int, bytes]]:
        """The PDV items (context ID, control byte and fragment), checked against the bounds."""
        pdvs = []
        pos, end = 6, len(pdu)
        while pos < end:
            if pos + 6 > end:
                raise ProtocolError(f"Unable to decode P-DATA-TF: {end - pos} stray bytes")
            item_length, context, control = struct.unpack_from(">LBB", pdu, pos)
            if item_length < 2 or pos + 4 + item_length > end:
                raise ProtocolError(
                    f"Unable to decode P-DATA-TF: a PDV item of {item_length} bytes "
                    f"in a PDU of {end - 6}"
                )
            self._size += item_length - 2
            if self._size > MAX_DIMSE_MESSAGE:
                LOG.warning(
                    "DIMSE message longer than %d bytes refused: closing the connection",
                    MAX_DIMSE_MESSAGE,
                )
                raise ProtocolError(f"DIMSE message exceeds {MAX_DIMSE_MESSAGE} bytes")
            if control & 0x02:  # last fragment of a command set or data set
                self._size = 0
            pdvs.append((context, pdu[pos + 5 : pos + 4 + item_length]))
            pos += 4 + item_length
        return pdvs

    def add(self, pdu: bytes) -> list[Message]:
        """Feed one P-DATA-TF PDU; the DIMSE messages it completes (usually 0 or 1)."""
        done: list[Message] = []
        for context_id, data in self._check_items(pdu):
            try:
                message = self._add_pdv(context_id, data)
            except ProtocolError:
                raise
            except Exception as exc:
                raise ProtocolError(f"Unable to decode DIMSE message: {exc!r}") from None
            if message is not None:
                done.append(message)
        return done

    def _add_pdv(self, context_id: int, data: bytes) -> Message | None:
        """One PDV (control byte, then the fragment, PS3.8 E.2): the message it completes."""
        control = data[0]
        if self._message is None:
            plain = self._plain
            if plain is None and control & 0x03 == 0x03:  # a whole command set
                try:
                    plain = read_plain(data[1:])
                except CommandError as exc:
                    raise ProtocolError(f"Unable to decode DIMSE message: {exc}") from None
                if plain is not None:
                    if not plain.has_data_set:
                        return Message(
                            plain.command_field, plain.complete(None, context_id), context_id
                        )
                    self._plain = plain
                    self._pdvs = [(context_id, data)]
                    return None
            elif plain is not None and not control & 0x01:  # its data set
                self._pdvs.append((context_id, data))
                if not control & 0x02:
                    return None
                command_context = self._pdvs[0][0]
                data_set = b"".join(fragment[1:] for _, fragment in self._pdvs[1:])
                self._plain, self._pdvs = None, []
                return Message(
                    plain.command_field, plain.complete(data_set, command_context), command_context
                )
            if self._plain is not None:  # not plain after all: DIMSEMessage from its start
                replay, self._plain, self._pdvs = self._pdvs, None, []
                self._message = DIMSEMessage()
                for replayed in replay:
                    self._message.decode_msg(_p_data(*replayed))
        return self._decode(context_id, data)

    def _decode(self, context_id: int, data: bytes) -> Message | None:
        """pynetdicom's DIMSEMessage, one PDV at a time."""
        if self._message is None:
            self._message = DIMSEMessage()
        if not self._message.decode_msg(_p_data(context_id, data)):
            return None
        message, self._message = self._message, None
        return Message(
            int(message.command_set.CommandField),
            message.message_to_primitive(),
            int(message.context_id or 0),
        )


def _p_data(context_id: int, data: bytes) -> P_DATA:
    """A P-DATA primitive of one PDV, as pynetdicom's P_DATA_TF.to_primitive() builds it."""
    primitive = P_DATA()
    primitive.presentation_data_value_list = [[context_id, data]]  # type: ignore[list-item]
    return primitive


def request_data_set(request: Any) -> BytesIO | None:
    """The data set of a DIMSE request primitive (Identifier, DataSet, ...), if any."""
    for name in ("Identifier", "DataSet", "AttributeList", "ModificationList", "ActionInformation"):
        value = getattr(request, name, None)
        if isinstance(value, BytesIO):
            return value
    return None


@dataclass
class Request:
    """One DIMSE request as a service sees it."""

    #: pynetdicom's primitive (C_FIND, C_ECHO, ...): MessageID, AffectedSOPClassUID, ...
    primitive: Any
    context: Context
    command_field: int

    @property
    def message_id(self) -> int:
        return int(self.primitive.MessageID)

    @property
    def sop_class_uid(self) -> str:
        uid = getattr(self.primitive, "AffectedSOPClassUID", None)
        return str(uid or getattr(self.primitive, "RequestedSOPClassUID", None) or "")

    def data_bytes(self) -> bytes:
        """The request's data set as received (empty if it has none)."""
        stream = request_data_set(self.primitive)
        return b"" if stream is None else stream.getvalue()

    def data_set(self) -> Dataset:
        """The request's data set, decoded in the context's transfer syntax (lazy values).

        Raises whatever pydicom raises for bytes that are no data set.
        """
        stream = request_data_set(self.primitive)
        if stream is None or not stream.getvalue():
            return Dataset()
        syntax = UID(self.context.transfer_syntax)
        ds = decode(stream, syntax.is_implicit_VR, syntax.is_little_endian, syntax.is_deflated)
        ds.set_original_encoding(syntax.is_implicit_VR, syntax.is_little_endian)
        return ds


@dataclass
class Responder:
    """How a service answers one request: buffered responses, cancel and liveness checks."""

    session: Session
    request: Request
    writer: PDataWriter
    #: a C-CANCEL-RQ for this request arrived (PS3.7 9.3.2.3)
    cancel_requested: bool = False

    @property
    def is_open(self) -> bool:
        """False once the peer aborted or closed the connection."""
        return self.session.is_established

    def send(self, command_set: bytes, data_set: bytes | None = None) -> None:
        """Queue one response (written in batches); looks for a C-CANCEL at each batch."""
        writes = self.writer.writes
        if data_set is None:
            self.writer.add(command_set, is_command=True)
        else:
            self.writer.add_message(command_set, data_set)
        if self.writer.writes != writes:  # a batch went out
            self._poll()

    def flush(self) -> None:
        self.writer.flush()
        self._poll()

    def respond(
        self,
        status: int,
        *,
        offending: tuple[int, ...] = (),
        error_comment: str = "",
    ) -> None:
        """Send the final response (no data set) and flush."""
        command = response_command_set(
            self.request.command_field | 0x8000,
            self.request.sop_class_uid,
            self.request.message_id,
            status,
            offending=offending,
            error_comment=error_comment,
        )
        self.writer.add(command, is_command=True)
        self.writer.flush()

    def _poll(self) -> None:
        if self.cancel_requested or not self.session.is_established:
            return
        if self.request.message_id in self.session.read_waiting():
            self.cancel_requested = True


#: A service's handler for one DIMSE command: answers ``request`` through the responder.
Handler = Callable[[Request, Responder], None]


@dataclass(frozen=True)
class Service:
    """What a DICOM service plugs into the association layer.

    ``abstract_syntaxes`` are offered to requestors (the SOP classes served);
    ``handlers`` maps each DIMSE command field it serves (PS3.7 E.1: 0x0020
    C-FIND-RQ, 0x0030 C-ECHO-RQ, 0x0140 N-CREATE-RQ, ...) to its handler.
    """

    name: str
    abstract_syntaxes: tuple[str, ...]
    handlers: dict[int, Handler]


#: The response message of each N-* request (PS3.7 E.1), encoded by pynetdicom.
_RESPONSE_MESSAGES = {
    0x0100: "N_EVENT_REPORT_RSP",
    0x0110: "N_GET_RSP",
    0x0120: "N_SET_RSP",
    0x0130: "N_ACTION_RSP",
    0x0140: "N_CREATE_RSP",
    0x0150: "N_DELETE_RSP",
}


def response_command(command_field: int, message_id: int, fields: dict[str, Any]) -> bytes:
    """The command set of the response to an N-* request, encoded by pynetdicom's codec.

    ``fields`` are command set keywords (AffectedSOPClassUID, Status,
    ActionTypeID, ErrorComment, ...); None leaves an element out. The Command
    Data Set Type says whether a data set follows (``has_data_set``).
    """
    import pynetdicom.dimse_messages as messages
    from pynetdicom.dsutils import encode

    message = getattr(messages, _RESPONSE_MESSAGES[command_field])()
    command = message.command_set
    command.MessageIDBeingRespondedTo = message_id
    for keyword, value in fields.items():
        if value is None:
            if keyword in command:
                delattr(command, keyword)
        else:
            setattr(command, keyword, value)
    for element in list(command):
        empty = element.value is None or element.value == ""
        if empty and element.keyword not in ("CommandGroupLength", "CommandDataSetType"):
            del command[element.tag]
    command.CommandField = command_field | 0x8000
    command.CommandDataSetType = 0x0101
    message._set_command_group_length()
    data = encode(command, True, True)
    assert data is not None
    return bytes(data)


def respond_with(responder: Responder, fields: dict[str, Any], data_set: bytes | None) -> None:
    """Send the final response to an N-* request: its command set, then ``data_set`` if any."""
    request = responder.request
    command = response_command(request.command_field, request.message_id, fields)
    if data_set:
        command = _with_data_set_flag(command)
    responder.writer.add(command, is_command=True)
    if data_set:
        responder.writer.add(data_set, is_command=False)
    responder.writer.flush()


def _with_data_set_flag(command: bytes) -> bytes:
    """The command set with Command Data Set Type (0000,0800) = 0x0001 (a data set follows)."""
    tag = struct.pack("<HHI", 0x0000, 0x0800, 2)
    at = command.find(tag)
    if at < 0:
        raise ValueError("command set without Command Data Set Type")
    return command[: at + 8] + struct.pack("<H", 0x0001) + command[at + 10 :]
