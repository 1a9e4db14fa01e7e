"""The UPS event sender (placeholder: delivery comes next).

Runs as a helper child of the supervisor (:mod:`wlmd.process.helpers`).
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wlmd.services.upsdata import UpsData


def run_event_sender(ups: UpsData) -> int:
    """Wait for SIGTERM; returns the exit status."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        signal.pause()
    return 0
