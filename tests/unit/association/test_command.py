"""Plain request command sets (wlmd.association.command) decode as pynetdicom's DIMSEMessage does.

The oracle is pynetdicom alone: each PDU decoded by P_DATA_TF, each PDV fed to a
DIMSEMessage, the primitive from message_to_primitive (what the assembler did
for every message before the plain path). The assembler must give the same
messages (type, every parameter, identifier bytes, context) or the same error,
for the requests modalities send, fragmented every way, and for seeded
mutations of their command sets.
"""

from __future__ import annotations

import random
import struct
from io import BytesIO
from typing import Any

import pytest
from pynetdicom.dimse_messages import C_CANCEL_RQ, C_ECHO_RQ, C_FIND_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_FIND
from pynetdicom.pdu import P_DATA_TF

from wlmd.association.dimse import MessageAssembler, ProtocolError

#: pydicom warns about the mutated command sets (unknown tags, odd lengths)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

MWL_FIND = "1.2.840.10008.5.1.4.31"
VERIFICATION = "1.2.840.10008.1.1"
IDENTIFIER = bytes.fromhex("10002000020000005031") + bytes.fromhex("1000100000000000")
PARAMETERS = (
    "MessageID",
    "MessageIDBeingRespondedTo",
    "AffectedSOPClassUID",
    "Priority",
)


def _find() -> C_FIND_RQ:
    primitive = C_FIND()
    primitive.MessageID = 7
    primitive.AffectedSOPClassUID = MWL_FIND
    primitive.Priority = 2
    primitive.Identifier = BytesIO(IDENTIFIER)
    message = C_FIND_RQ()
    message.primitive_to_message(primitive)
    return message


def _echo() -> C_ECHO_RQ:
    primitive = C_ECHO()
    primitive.MessageID = 3
    primitive.AffectedSOPClassUID = VERIFICATION
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return message


def _cancel() -> C_CANCEL_RQ:
    primitive = C_CANCEL()
    primitive.MessageIDBeingRespondedTo = 7
    message = C_CANCEL_RQ()
    message.primitive_to_message(primitive)
    return message


def _pdus(message: DIMSEMessage, max_pdu: int = 16384, context_id: int = 1) -> list[bytes]:
    return [bytes(P_DATA_TF(p).encode()) for p in message.encode_msg(context_id, max_pdu)]


def _pdu(*pdvs: tuple[int, int, bytes]) -> bytes:
    """A P-DATA-TF of (context ID, control byte, fragment) items."""
    body = b"".join(struct.pack(">LBB", len(f) + 2, cid, control) + f for cid, control, f in pdvs)
    return struct.pack(">BBL", 0x04, 0, len(body)) + body


def _summary(message: Any) -> tuple[Any, ...]:
    primitive = message.primitive
    identifier = getattr(primitive, "Identifier", None)
    return (
        message.command_field,
        message.context_id,
        type(primitive).__name__,
        tuple(getattr(primitive, name, None) for name in PARAMETERS),
        None if identifier is None else identifier.getvalue(),
        primitive._context_id,
    )


def _oracle(pdus: list[bytes]) -> list[Any]:
    """pynetdicom alone: P_DATA_TF, then DIMSEMessage one PDV at a time."""
    out: list[Any] = []
    message: DIMSEMessage | None = None
    for pdu in pdus:
        decoded = P_DATA_TF()
        decoded.decode(pdu)
        primitive = decoded.to_primitive()
        for pdv in primitive.presentation_data_value_list:
            single = type(primitive)()
            single.presentation_data_value_list = [list(pdv)]
            message = message or DIMSEMessage()
            try:
                if not message.decode_msg(single):
                    continue
                done, message = message, None
                out.append(
                    (
                        int(done.command_set.CommandField),
                        int(done.context_id or 0),
                        _primitive_summary(done.message_to_primitive()),
                    )
                )
            except Exception as exc:
                return [*out, f"Unable to decode DIMSE message: {exc!r}"]
    return out


def _primitive_summary(primitive: Any) -> tuple[Any, ...]:
    identifier = getattr(primitive, "Identifier", None)
    return (
        type(primitive).__name__,
        tuple(getattr(primitive, name, None) for name in PARAMETERS),
        None if identifier is None else identifier.getvalue(),
        primitive._context_id,
    )


def _ours(pdus: list[bytes]) -> list[Any]:
    out: list[Any] = []
    assembler = MessageAssembler()
    for pdu in pdus:
        try:
            messages = assembler.add(pdu)
        except ProtocolError as exc:
            return [*out, str(exc)]
        for m in messages:
            summary = _summary(m)
            out.append((summary[0], summary[1], summary[2:]))
    return out


@pytest.mark.parametrize("build", [_find, _echo, _cancel])
@pytest.mark.parametrize("max_pdu", [16384, 60, 20])
def test_requests_fragmented_every_way_decode_alike(build: Any, max_pdu: int) -> None:
    pdus = _pdus(build(), max_pdu)
    expected = _oracle(pdus)
    assert len(expected) == 1 and not isinstance(expected[0], str)
    assert _ours(pdus) == expected


def test_command_and_identifier_in_one_pdu_and_two_messages_in_a_row() -> None:
    find = _pdus(_find())
    command, data = find[0][12:], find[1][12:]
    one = _pdu((1, 0x03, command), (1, 0x02, data))
    pdus = [one, *_pdus(_echo(), context_id=3), one]
    assert _ours(pdus) == _oracle(pdus)
    assert len(_ours(pdus)) == 3


def test_a_command_fragment_while_the_identifier_is_awaited_goes_to_dimsemessage() -> None:
    find = _pdus(_find())
    command = find[0][12:]
    pdus = [find[0], _pdu((1, 0x03, command)), find[1]]
    assert _ours(pdus) == _oracle(pdus)


@pytest.mark.parametrize("build", [_find, _echo, _cancel])
def test_mutated_command_sets_decode_alike(build: Any) -> None:
    """Seeded changes to the command set bytes: equal messages, or the same error."""
    rng = random.Random(7)
    pdus = _pdus(build())
    command = bytearray(pdus[0][12:])
    plain = 0
    for _ in range(1500):
        mutated = bytearray(command)
        for _ in range(rng.randint(1, 2)):
            pos = rng.randrange(len(mutated))
            if rng.random() < 0.8:
                mutated[pos] = rng.randrange(256)
            else:
                del mutated[pos : pos + rng.randint(1, 4)]
        if not mutated:
            continue
        trial = [_pdu((1, 0x03, bytes(mutated))), *pdus[1:]]
        expected = _oracle(trial)
        assert _ours(trial) == expected, bytes(mutated).hex()
        plain += bool(expected) and not isinstance(expected[0], str)
    assert plain > 100
