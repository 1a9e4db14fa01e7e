"""SIGTERM in a helper child: a flag, and waits that end when it comes.

Every helper child (:mod:`wlmd.process.helpers`: the UPS event sender, the
housekeeping child, the HL7 forwarder) sleeps between looks at its work and
must stop within the supervisor's :data:`~wlmd.process.helpers.STOP_TIMEOUT`.
The handler only sets a flag; the signal's wakeup descriptor
(:func:`signal.set_wakeup_fd`) ends a wait at once, so a stop never waits for
a poll interval to run out.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal


class StopSignal:
    """SIGTERM as :attr:`requested`, plus a descriptor to wait on."""

    def __init__(self) -> None:
        self.requested = False
        self._read, write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(write)
        signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, _signum: int, _frame: object) -> None:
        self.requested = True

    def wait(self, timeout: float, also: int | None = None) -> None:
        """Until SIGTERM, ``also`` is readable (its bytes are read), or ``timeout`` seconds.

        No early return once stopping: the event sender goes on delivering
        during its stop grace and must still sleep between looks; a SIGTERM
        that came before the wait left a byte in the pipe, so it ends at once.
        """
        fds = [self._read] if also is None else [self._read, also]
        readable, _, _ = select.select(fds, [], [], max(0.0, timeout))
        for fd in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(fd, 4096)
