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
