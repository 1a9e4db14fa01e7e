"""Logging for wlmd: one stderr line per event, tagged with the association.

Default output, on stderr (journald adds its own timestamp, but a foreground
run or a redirected file needs one)::

    2024-05-02 10:11:12,345 wlmd[4242] INFO [a1kq2x9.12] C-FIND from MODALITY1: 3 matches

Under systemd, when stderr is the journal's stream (:mod:`wlmd.process.journal`),
the line is ``<6>INFO [a1kq2x9.12] C-FIND ...`` instead: an sd-daemon priority
prefix, so that journald stores each line at its level, and no timestamp
or pid, which journald records itself.

The ``[a1kq2x9.12] `` tag (its format: :func:`wlmd.association.logtext.association_prefix`)
comes from :func:`set_association_id`: the worker sets it when it takes an
association so that every line of that association, including pynetdicom's own,
can be grepped together.

Levels are wlmscpfs's (``-q``, ``-v``, ``-d``, ``-ll``): fatal→CRITICAL,
error→ERROR, warn→WARNING (default), info→INFO, debug→DEBUG and trace→TRACE
(a level 5 below DEBUG). pynetdicom logs every PDU at INFO, so its loggers stay
at WARNING unless debug or trace was asked for.

``-lc FILE`` / ``--log-config FILE`` replaces all of this with a Python
:func:`logging.config.fileConfig` INI file (``[loggers]``, ``[handlers]``,
``[formatters]`` sections; see the logging.config documentation), which is
how logs go to a file, with rotation, or to syslog (:class:`ServiceHandler`:
the journal under systemd, syslog elsewhere, each line once). Such a file is
applied all or nothing (:mod:`wlmd.process.logfile`), so a broken edit followed by
SIGHUP leaves the previous configuration working. Formats in that file may
use ``%(assoc)s`` too. DCMTK's log4cplus ``logger.cfg`` files are *not*
understood; wlmd says so instead of failing obscurely.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from wlmd.process import logfile
from wlmd.process.journal import StderrHandler
from wlmd.process.logfile import LogConfigError
from wlmd.process.loghandlers import SYSLOG_FORMAT, ServiceHandler, SyslogHandler

__all__ = [
    "LEVELS",
    "TRACE",
    "AssociationFilter",
    "LogConfigError",
    "LogThrottle",
    "ServiceHandler",
    "StderrHandler",
    "SyslogHandler",
    "reload_logging",
    "set_association_id",
    "setup_logging",
]

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

LEVELS: dict[str, int] = {
    "fatal": logging.CRITICAL,
    "error": logging.ERROR,
    "warn": logging.WARNING,
    "info": logging.INFO,
    "debug": logging.DEBUG,
    "trace": TRACE,
}

FORMAT = "%(asctime)s wlmd[%(process)d] %(levelname)s %(assoc)s%(message)s"
#: on stderr when it is the journal: journald adds the time, the unit and the pid
JOURNAL_FORMAT = "%(levelname)s %(assoc)s%(message)s"

# Loggers of libraries that are chatty below WARNING.
QUIET_LOGGERS = ("pynetdicom",)

log = logging.getLogger(__name__)


class LoggingConfig(Protocol):
    """The part of :class:`wlmd.settings.config.Config` this module reads."""

    @property
    def log_level(self) -> str: ...

    @property
    def log_config(self) -> str | None: ...


# --- the association tag --------------------------------------------------------

# Process-wide, because in the fork model a worker process serves exactly one
# association and pynetdicom logs from its own threads, which must see the tag.
_association_id: str | None = None
# Per-thread override, for a single-process server that runs associations in
# threads side by side.
_thread_local = threading.local()


def set_association_id(association_id: str | None, *, this_thread_only: bool = False) -> None:
    """Tag subsequent log lines with ``[association_id] `` (None: no tag).

    With ``this_thread_only`` the tag applies to the calling thread alone and
    takes precedence over the process-wide one.
    """
    global _association_id
    if this_thread_only:
        _thread_local.association_id = association_id
    else:
        _association_id = association_id


def current_association_id() -> str | None:
    """The tag log lines get right now in this thread."""
    if getattr(_thread_local, "association_id", None) is not None:
        return str(_thread_local.association_id)
    return _association_id


class AssociationFilter(logging.Filter):
    """Give every record an ``assoc`` attribute: ``"[a1kq2x9.12] "`` or ``""``.

    A filter (on handlers, not loggers) so that records from every logger,
    pynetdicom's included, get it without each module knowing about it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        association_id = current_association_id()
        record.assoc = f"[{association_id}] " if association_id else ""
        return True


class LibraryRecordFilter(logging.Filter):
    """pynetdicom's complaints about a peer, as an operator needs them (below debug level).

    pynetdicom logs every malformed PDU, reset connection or bad DIMSE
    message from a peer at ERROR, with ``logger.exception``: dozens of
    traceback lines, at a level that says "the server is broken", for what
    is "this peer sent garbage or hung up and was disconnected". Below debug
    level the exception is folded into one line and ERROR becomes WARNING,
    so ``journalctl -p err`` shows wlmd's own failures. At debug level
    records are left as they are. A logger filter (not a handler filter),
    so that handler levels see the new level.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            return True
        if record.levelno == logging.ERROR:
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            reason = f"{type(exc).__name__}: {exc}".rstrip(": ")
            # logger.exception(exc) repeats the exception as the message
            message = "" if record.msg is exc else record.getMessage()
            record.msg = f"{message} ({reason})" if message else reason
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def _tame_library_loggers() -> None:
    """Put :class:`LibraryRecordFilter` on every pynetdicom logger (they exist once imported)."""
    import pynetdicom  # noqa: F401  (creates its module loggers)

    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not name.startswith(QUIET_LOGGERS) or not isinstance(logger, logging.Logger):
            continue
        if not any(isinstance(f, LibraryRecordFilter) for f in logger.filters):
            logger.addFilter(LibraryRecordFilter())


class LogThrottle:
    """At most ``burst`` log lines per ``period`` seconds, for lines a flood repeats.

    A peer hammering a full server must not flood syslog. :meth:`take`
    returns None for a line to drop, else the text to end the line with:
    "" or " (N more not logged)", counting what was dropped before it.
    """

    def __init__(self, burst: int = 20, period: float = 10.0) -> None:
        self.burst = burst
        self.period = period
        self._window = -period
        self._used = 0
        self._dropped = 0

    def take(self) -> str | None:
        now = time.monotonic()
        if now - self._window >= self.period:
            self._window, self._used = now, 0
        if self._used >= self.burst:
            self._dropped += 1
            return None
        self._used += 1
        dropped, self._dropped = self._dropped, 0
        return f" ({dropped} more not logged)" if dropped else ""


# --- setup ------------------------------------------------------------------------

_OURS = "_wlmd_handler"  # marks the handler we install, so a reload can replace it


_detached = False  # set once --daemon has detached: the default handler is syslog then


def _install_default(level: int) -> None:
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _OURS, False):
            root.removeHandler(old)
            old.close()
    handler: logging.Handler
    if _detached:
        # --daemon without --log-config: stderr is /dev/null, syslog is the log.
        handler = SyslogHandler("/dev/log", "daemon")
        handler.setFormatter(logging.Formatter(SYSLOG_FORMAT))
    else:
        # Under systemd, prefixed lines without a timestamp (journald adds it).
        stderr = StderrHandler()
        stderr.setFormatter(logging.Formatter(JOURNAL_FORMAT if stderr.journal else FORMAT))
        handler = stderr
    handler.addFilter(AssociationFilter())
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level)
    # pynetdicom's INFO is a PDU dump; only debug and trace want it.
    quiet_level = level if level <= logging.DEBUG else max(level, logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet_level)


def _finish_file_config() -> None:
    """After a ``--log-config`` file: ``%(assoc)s`` everywhere, pynetdicom quiet unless asked."""
    for logger in [logging.getLogger(), *_all_loggers()]:
        for handler in logger.handlers:
            if not any(isinstance(f, AssociationFilter) for f in handler.filters):
                handler.addFilter(AssociationFilter())
    # A file that does not mention pynetdicom should not get its PDU dumps.
    root_level = logging.getLogger().getEffectiveLevel()
    for name in QUIET_LOGGERS:
        quiet = logging.getLogger(name)
        if quiet.level == logging.NOTSET and root_level > logging.DEBUG:
            quiet.setLevel(max(root_level, logging.WARNING))


def _all_loggers() -> list[logging.Logger]:
    return [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]


def setup_logging(config: LoggingConfig, *, detached: bool | None = None) -> None:
    """Configure the logging module from ``config``; call once at start-up.

    Raises :class:`LogConfigError` if the ``--log-config`` file is unusable.
    Safe to call again (see :func:`reload_logging`): a ``--log-config`` file
    is applied all or nothing (:func:`wlmd.process.logfile.apply`). ``detached=True``
    (after ``--daemon`` has detached) first drops the handlers whose
    descriptors python-daemon closed, and makes syslog the default target
    instead of stderr, for this and later calls.
    """
    global _detached
    if detached is not None:
        _detached = detached
    if detached:
        logfile.close_all()  # their descriptors are gone (see there)
    _tame_library_loggers()
    if config.log_config:
        logfile.apply(config.log_config, _finish_file_config)
    else:
        _install_default(LEVELS[config.log_level])


def reload_logging(config: LoggingConfig) -> bool:
    """Re-apply the logging setup, e.g. on SIGHUP after logrotate or an edited -lc file.

    Never raises: a server must not die, nor lose its audit trail, because its
    log config was edited badly. If the file is now unusable the previous
    configuration stays exactly as it was (:func:`wlmd.process.logfile.apply`), the
    reason is logged at error level through it, and False is returned.
    """
    try:
        setup_logging(config)
    except LogConfigError as exc:
        log.error(
            "SIGHUP: logging configuration %s not reloaded: %s; keeping the previous one",
            exc.path,
            exc.reason,
        )
        return False
    return True
