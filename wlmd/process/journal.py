"""Writing to the systemd journal through stderr, each line at its own priority.

Under a systemd unit stdout and stderr are connected to journald, which
stores every line at the unit's default priority (info, 6) unless the line
starts with an sd-daemon(3) prefix such as ``<3>`` (``SyslogLevelPrefix=``
defaults to yes, systemd.exec(5)). Without the prefix a configuration error
is invisible to ``journalctl -p err`` and to monitoring that watches it.

Whether stderr *is* the journal is what systemd.exec(5) says to check:
``$JOURNAL_STREAM`` holds ``DEVICE:INODE`` of the stream it connected, and
the descriptor must still be that stream (the variable is inherited by
anything the service starts, whose stderr may be a terminal or a pipe).
On a terminal, a pipe or a file nothing changes: no prefixes there, where
they would only be noise.

A leaf module (logging and os only): :mod:`wlmd.cli` uses it before logging
is set up, :mod:`wlmd.process.logsetup` for its handlers.
"""

from __future__ import annotations

import logging
import os
import sys

#: syslog(3) priorities, as sd-daemon(3) spells them in its prefixes
CRIT, ERR, WARNING, NOTICE, INFO, DEBUG = 2, 3, 4, 5, 6, 7


def is_journal_stream(fd: int = 2, environ: dict[str, str] | None = None) -> bool:
    """Whether descriptor ``fd`` is the stream systemd connected to the journal.

    systemd.exec(5): compare ``$JOURNAL_STREAM`` ("DEVICE:INODE", decimal)
    with ``fstat()`` of the descriptor. Anything malformed, or a closed
    descriptor, means no.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (int(device), int(inode))


def priority(levelno: int) -> int:
    """The syslog priority of a :mod:`logging` level (TRACE and DEBUG are debug)."""
    if levelno >= logging.CRITICAL:
        return CRIT
    if levelno >= logging.ERROR:
        return ERR
    if levelno >= logging.WARNING:
        return WARNING
    if levelno >= logging.INFO:
        return INFO
    return DEBUG


def prefixed(text: str, levelno: int) -> str:
    """``text`` with the sd-daemon prefix on every line.

    journald makes one entry per line, so a multi-line record (a traceback at
    debug level) needs the prefix on each line, or its tail lands at info.
    """
    mark = f"<{priority(levelno)}>"
    return "\n".join(mark + line for line in text.split("\n"))


def stderr_line(text: str, levelno: int) -> None:
    """Write one line to stderr: prefixed if stderr is the journal, as it is otherwise."""
    line = " ".join(text.splitlines())
    if stderr_is_journal():
        line = prefixed(line, levelno)
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def stderr_is_journal() -> bool:
    """:func:`is_journal_stream` for ``sys.stderr`` (False if it has no descriptor)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test, or closed
        return False
    return is_journal_stream(fd)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A :class:`logging.StreamHandler` on stderr that speaks the journal's prefixes.

    Whether stderr is the journal is decided when the handler is made (a
    reload makes a new one; ``--daemon`` sets logging up again after it
    pointed stderr at /dev/null). :attr:`journal` tells which, so a caller
    can pick a format without a timestamp there (journald adds its own).

    Usable from a ``--log-config`` file as ``class = wlmd.logsetup.StderrHandler``
    (``args = ()``).
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.journal = stderr_is_journal()

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return prefixed(text, record.levelno) if self.journal else text
