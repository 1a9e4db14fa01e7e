"""Log handlers for a service: syslog that survives syslog, and the journal-or-syslog one.

Kept apart from :mod:`wlmd.process.logsetup` (which decides *which* handlers to
install) so each stays small; ``--log-config`` files name these classes as
``wlmd.logsetup.SyslogHandler`` and ``wlmd.logsetup.ServiceHandler``, which
that module re-exports (the names the shipped logging.conf has always used).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import socket
import sys
import time

from wlmd.process.journal import prefixed, stderr_is_journal


class SyslogHandler(logging.handlers.SysLogHandler):
    """Syslog over ``/dev/log`` that keeps the server running when syslog is gone.

    The standard handler fails at construction when ``/dev/log`` is missing
    and prints a traceback per record when the socket breaks (journald or
    rsyslog restarted). A worklist server must keep serving either way:
    this handler connects lazily, retries at most every
    :attr:`RETRY_SECONDS`, and meanwhile writes the line to stderr (which
    systemd sends to the journal), saying once that syslog is unavailable.

    Usable from a ``--log-config`` file as
    ``class = wlmd.logsetup.SyslogHandler`` with ``args = ("/dev/log", "daemon")``.
    """

    RETRY_SECONDS = 5.0

    def __init__(self, address: str = "/dev/log", facility: str | int = "daemon") -> None:
        logging.Handler.__init__(self)
        self.address = address
        self.facility = (
            self.facility_names[facility] if isinstance(facility, str) else int(facility)
        )
        self.socktype = socket.SOCK_DGRAM
        self.unixsocket = True
        self.socket: socket.socket | None = None  # type: ignore[assignment]
        self._retry_at = 0.0
        self._broken_reported = False

    def mapPriority(self, levelName: str) -> str:  # the base class's spelling
        return "debug" if levelName == "TRACE" else super().mapPriority(levelName)

    def _connect(self) -> socket.socket | None:
        if self.socket is not None:
            return self.socket
        now = time.monotonic()
        if now < self._retry_at:
            return None
        self._retry_at = now + self.RETRY_SECONDS
        for socktype in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            sock = socket.socket(socket.AF_UNIX, socktype | socket.SOCK_CLOEXEC)
            try:
                sock.connect(self.address)
            except OSError:
                sock.close()
                continue
            self.socktype = socktype
            self.socket = sock
            if self._broken_reported:
                self._broken_reported = False
                sys.stderr.write(f"wlmd[{os.getpid()}]: syslog ({self.address}) is back\n")
            return sock
        return None

    def _send(self, data: bytes) -> bool:
        sock = self._connect()
        if sock is None:
            return False
        try:
            if self.socktype == socket.SOCK_DGRAM:
                sock.send(data)
            else:
                sock.sendall(data)
        except OSError:
            # Broken (syslog restarted): allow reconnecting at once.
            sock.close()
            self.socket = None
            self._retry_at = 0.0
            return False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            priority = self.encodePriority(self.facility, self.mapPriority(record.levelname))
            data = f"<{priority}>{message}\000".encode()
        except Exception:
            self.handleError(record)
            return
        # The second try only does something when the first found a broken
        # socket; after a failed connect, _connect() waits RETRY_SECONDS.
        if not (self._send(data) or self._send(data)):
            self._fallback(message, record.levelno)

    def _fallback(self, message: str, levelno: int) -> None:
        with contextlib.suppress(Exception):
            journal = stderr_is_journal()
            if not self._broken_reported:
                self._broken_reported = True
                note = (
                    f"wlmd[{os.getpid()}]: syslog ({self.address}) unavailable; "
                    "logging to stderr until it is back"
                )
                sys.stderr.write((prefixed(note, logging.WARNING) if journal else note) + "\n")
            sys.stderr.write((prefixed(message, levelno) if journal else message) + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        self.acquire()
        try:
            if self.socket is not None:
                self.socket.close()
                self.socket = None
            logging.Handler.close(self)
        finally:
            self.release()


SYSLOG_FORMAT = "wlmd[%(process)d]: %(levelname)s %(assoc)s%(message)s"


class ServiceHandler(SyslogHandler):
    """The service's log: the journal under systemd, else syslog; each line once.

    Under a systemd unit (stderr is ``$JOURNAL_STREAM``, see
    :mod:`wlmd.process.journal`) lines go to stderr with sd-daemon priority
    prefixes, not to ``/dev/log``: journald files stream lines under the unit
    reliably, even from a process that exits at once (a syslog datagram from
    a process already gone may lose its unit, so ``journalctl -u wlmd``
    would miss why start-up failed), and nothing then reaches the journal
    twice. Elsewhere (``--daemon``, an init script, a terminal) lines go to
    syslog like :class:`SyslogHandler`, and those at ``stderr_level`` and
    above are also written to stderr, so that a start from a terminal shows
    why it failed.

    The handler adds the syslog ident ``wlmd[PID]: `` itself (not the
    journal: it records the unit and pid), so formats should not.
    Usable from a ``--log-config`` file as ``class = wlmd.logsetup.ServiceHandler``
    with ``args = ("/dev/log", "daemon", "CRITICAL")``.
    """

    def __init__(
        self,
        address: str = "/dev/log",
        facility: str | int = "daemon",
        stderr_level: str | int = logging.CRITICAL,
    ) -> None:
        super().__init__(address, facility)
        self.stderr_level = (
            logging.getLevelName(stderr_level) if isinstance(stderr_level, str) else stderr_level
        )
        if not isinstance(self.stderr_level, int):
            raise ValueError(f"unknown stderr level {stderr_level!r}")
        self.journal = stderr_is_journal()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if self.journal else f"wlmd[{record.process}]: {text}"

    def emit(self, record: logging.LogRecord) -> None:
        if not self.journal:
            super().emit(record)
            if record.levelno < self.stderr_level:
                return
        try:
            text = self.format(record)
            sys.stderr.write((prefixed(text, record.levelno) if self.journal else text) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)
