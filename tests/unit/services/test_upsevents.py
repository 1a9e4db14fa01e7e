"""The event sender's small rules: which answers count as delivered, the warning throttle."""

from __future__ import annotations

import pytest

from wlmd.services.upsdelivery import delivered
from wlmd.services.upsevents import Throttle


@pytest.mark.parametrize(
    ("status", "taken"),
    [
        (0x0000, True),  # Success
        (0x0001, True),  # Warning: requested optional attributes are not supported
        (0x0107, True),  # Warning: attribute list error
        (0xB000, True),
        (0x0110, False),  # Processing failure
        (0x0113, False),  # No such event type
        (0x0118, False),  # No such SOP Class: dcmups -L on the final Push UID
        (0x0213, False),  # Resource limitation
        (0xA700, False),
        (0xC000, False),
    ],
)
def test_success_and_warnings_are_delivered_failures_are_retried(status: int, taken: bool) -> None:
    assert delivered(status) is taken


def test_throttle_counts_what_it_dropped() -> None:
    throttle = Throttle(burst=2, period=3600)
    assert [throttle.take() for _ in range(5)] == ["", "", None, None, None]
    throttle._window -= 3600  # the next period
    assert throttle.take() == " (3 more not logged)"
