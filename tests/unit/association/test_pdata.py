"""P-DATA-TF PDUs of the fast pending-response path, parsed back by pynetdicom's decoder."""

from __future__ import annotations

import socket

import pytest
from pynetdicom.dimse_messages import C_FIND_RSP
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

from wlmd.association.wire import PDataWriter, pending_command_set


def _pdus(stream: bytes) -> list[P_DATA_TF]:
    pdus = []
    while stream:
        length = int.from_bytes(stream[2:6], "big")
        pdu = P_DATA_TF()
        pdu.decode(stream[: 6 + length])
        pdus.append(pdu)
        stream = stream[6 + length :]
    return pdus


@pytest.mark.parametrize("max_pdu", [0, 4096, 16384])
def test_command_and_data_set_round_trip(max_pdu: int) -> None:
    command = pending_command_set("1.2.840.10008.5.1.4.31", 7, 0xFF00)
    data = bytes(range(256)) * 40  # 10 KiB: several fragments at 4096
    left, right = socket.socketpair()
    with left, right:
        writer = PDataWriter(left, 3, max_pdu)
        writer.add(command, is_command=True)
        writer.add(data, is_command=False)
        writer.flush()
        left.shutdown(socket.SHUT_WR)
        stream = b""
        while chunk := right.recv(65536):
            stream += chunk
    message = C_FIND_RSP()
    complete = False
    for pdu in _pdus(stream):
        if max_pdu:
            assert len(pdu) - 6 <= max_pdu  # the variable part respects the peer's maximum
        for item in pdu.presentation_data_value_items:
            assert item.context_id == 3
            # item.data: the message control header and the fragment, as decode_msg wants
            primitive = P_DATA()
            primitive.presentation_data_value_list = [[item.context_id, item.data]]
            complete = message.decode_msg(primitive)
    assert complete
    assert message.command_set.CommandField == 0x8020
    assert message.command_set.MessageIDBeingRespondedTo == 7
    assert message.command_set.Status == 0xFF00
    assert message.command_set.AffectedSOPClassUID == "1.2.840.10008.5.1.4.31"
    assert message.command_set.CommandDataSetType != 0x0101
    assert message.data_set.getvalue() == data


class _Capture:
    """A socket stand-in that keeps what is written (PDataWriter only calls sendall)."""

    def __init__(self) -> None:
        self.data = bytearray()

    def sendall(self, data: bytes) -> None:
        self.data += data


@pytest.mark.parametrize("max_pdu", [0, 4096, 16384])
@pytest.mark.parametrize("size", [0, 1, 801, 5000])
def test_add_message_writes_the_same_pdus_as_two_adds(max_pdu: int, size: int) -> None:
    command = pending_command_set("1.2.840.10008.5.1.4.31", 7, 0xFF00)
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    one, two = _Capture(), _Capture()
    a = PDataWriter(one, 5, max_pdu)  # type: ignore[arg-type]
    b = PDataWriter(two, 5, max_pdu)  # type: ignore[arg-type]
    for _ in range(30):  # past FLUSH_AT for the larger sizes: batches written on the way
        a.add_message(command, data)
        b.add(command, is_command=True)
        b.add(data, is_command=False)
    a.flush()
    b.flush()
    assert bytes(one.data) == bytes(two.data)


def test_add_message_says_when_a_batch_went_out() -> None:
    command = pending_command_set("1.2.840.10008.5.1.4.31", 7, 0xFF00)
    sink = _Capture()
    writer = PDataWriter(sink, 1, 16384)  # type: ignore[arg-type]
    results = [writer.add_message(command, bytes(1000)) for _ in range(100)]
    assert any(results) and not all(results)
    assert writer.writes == results.count(True)
    assert len(sink.data) > 0
