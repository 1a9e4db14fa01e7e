"""The ORM^O01 status message made of an MPPS, read back by wlmd's own intake parser."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from tests.helpers.mpps import in_progress
from wlmd.hl7.mapping import combined
from wlmd.hl7.message import Message
from wlmd.hl7.orders import orders_of
from wlmd.hl7.status import status_message


def mpps(status: str, name: str = "Doe^Jane^^Dr^") -> Dataset:
    ds = in_progress("1.2.826.0.1.3680043.8.498.10", "SPS1")
    ds.PerformedProcedureStepStatus = status
    ds.PatientName = name
    step = ds.ScheduledStepAttributesSequence[0]
    step.PlacerOrderNumberImagingServiceRequest = "PL|1"
    step.FillerOrderNumberImagingServiceRequest = "FI1"
    return ds


@pytest.mark.parametrize(
    ("status", "orc_5", "remove"),
    [("IN PROGRESS", "IP", False), ("COMPLETED", "CM", True), ("DISCONTINUED", "DC", True)],
)
def test_status_message_fields(status: str, orc_5: str, remove: bool) -> None:
    payload = status_message(mpps(status), "WLMD0001")
    msg = Message(payload)
    assert msg.value("MSH-9") == "ORM" and msg.value("MSH-9.2") == "O01"
    assert (msg.value("MSH-10"), msg.value("MSH-12")) == ("WLMD0001", "2.3.1")
    assert (msg.value("ORC-1"), msg.value("ORC-5")) == ("SC", orc_5)
    assert msg.value("ORC-2") == "PL|1", "escaped, then unescaped"
    assert msg.value("ORC-3") == "FI1"
    assert msg.value("PID-3") == "MPPS1"
    assert (msg.value("PID-5.1"), msg.value("PID-5.2"), msg.value("PID-5.5")) == (
        "Doe",
        "Jane",
        "Dr",
    )
    assert (msg.value("OBR-18"), msg.value("OBR-19"), msg.value("OBR-20")) == (
        "ACC1",
        "RP1",
        "SPS1",
    )
    assert msg.value("OBR-24") == "CT"
    assert msg.value("ZDS-1") == "1.2.826.0.1.3680043.8.498.10"
    if remove:  # read back as wlmd's intake reads a RIS's SC: the same order identity
        (order,) = orders_of(msg, combined(), {"CT": "CT01"})
        assert order.remove and order.dataset.AccessionNumber == "ACC1"


def test_a_non_ascii_name_makes_a_utf8_message() -> None:
    payload = status_message(mpps("COMPLETED", "Østergård^Åse"), "W2")
    msg = Message(payload)
    assert msg.value("MSH-18") == "UNICODE UTF-8"
    assert msg.value("PID-5.1") == "Østergård"
    assert status_message(mpps("COMPLETED"), "W3").split(b"\r")[0].count(b"|") == 11


def test_a_status_without_an_order_status_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        status_message(mpps("SCHEDULED"), "W4")
