"""Applying a ``--log-config`` file all or nothing, so a bad edit never breaks logging.

:func:`logging.config.fileConfig` first closes and detaches every handler,
then builds the new ones and wires the loggers; if the file is broken
half-way, the process is left with no handlers or a half-built set. For a
server whose log is the audit trail (one line per association and query),
a ``systemctl reload`` after a bad edit must not do that: the previous
configuration has to keep working, exactly as it was.

:func:`apply` therefore takes a snapshot of every logger's level, handlers,
filters, ``propagate`` and ``disabled`` and of the logging module's handler
registry, hides the old handlers from ``fileConfig``'s clean-up (so they stay
open), applies the file, and runs the caller's finishing step. Any exception
restores the snapshot and closes only the handlers the attempt created; on
success the old handlers nobody uses any more are closed. The registry
(``logging._handlers``, ``logging._handlerList``) is private to the logging
module but has had this shape since Python 2.7; it is touched here only.
"""

from __future__ import annotations

import configparser
import logging
import logging.config
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class LogConfigError(Exception):
    """The ``--log-config`` file cannot be used; ``str()`` is a one-line reason.

    :attr:`path` and :attr:`reason` are kept apart for messages that say
    something else about the file (a reload keeping the previous one).
    Kept apart from :class:`wlmd.settings.options.UsageError` because logging is a
    leaf anyone may import; :func:`wlmd.cli.main` treats both the same.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"bad --log-config file {path!r}: {reason}")
        self.path = path
        self.reason = reason


def reason(exc: BaseException) -> str:
    """One line for what ``fileConfig`` raised (anything from KeyError to ImportError)."""
    if isinstance(exc, KeyError):
        return f"missing section or key {exc}"
    if isinstance(exc, configparser.Error):
        return exc.message.splitlines()[0] if exc.message else type(exc).__name__
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def precheck(path: str) -> str | None:
    """Reasons fileConfig would report badly: an unreadable or empty file, a DCMTK logger.cfg."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in handle]
    except OSError as exc:
        return exc.strerror or str(exc)
    settings = [line for line in lines if line and not line.startswith(("#", ";"))]
    if not settings:
        # as wlmscpfs: "Specified --log-config file does not contain any settings"
        return "the file contains no settings"
    if any(line.startswith("log4cplus.") for line in settings):
        return (
            "this is a DCMTK (log4cplus) logger config; "
            "wlmd expects a Python logging fileConfig INI file"
        )
    return None


@dataclass
class _LoggerState:
    level: int
    handlers: list[logging.Handler]
    filters: list[Any]  # logging.Filter objects or callables
    propagate: bool
    disabled: bool


def _loggers() -> dict[str, logging.Logger]:
    found = {"": logging.getLogger()}
    for name, logger in logging.Logger.manager.loggerDict.items():
        if isinstance(logger, logging.Logger):
            found[name] = logger
    return found


def _state(logger: logging.Logger) -> _LoggerState:
    return _LoggerState(
        logger.level, logger.handlers[:], logger.filters[:], logger.propagate, logger.disabled
    )


def _restore(logger: logging.Logger, state: _LoggerState) -> None:
    logger.setLevel(state.level)  # setLevel also clears the loggers' level cache
    logger.handlers = state.handlers[:]
    logger.filters = state.filters[:]
    logger.propagate = state.propagate
    logger.disabled = state.disabled


def _in_use() -> set[int]:
    return {id(handler) for logger in _loggers().values() for handler in logger.handlers}


def apply(path: str, finish: Callable[[], None]) -> None:
    """Apply the fileConfig file ``path``, then ``finish()``; all of it or none of it.

    Raises :class:`LogConfigError` (the previous configuration untouched) if
    the file is unusable or ``finish`` fails.
    """
    problem = precheck(path)
    if problem is not None:
        raise LogConfigError(path, problem)
    registry: list[weakref.ReferenceType[logging.Handler]] = logging._handlerList  # type: ignore[attr-defined]
    named: weakref.WeakValueDictionary[str, logging.Handler] = logging._handlers  # type: ignore[attr-defined]
    with logging._lock:  # type: ignore[attr-defined]  # fileConfig's lock (re-entrant)
        before = {name: _state(logger) for name, logger in _loggers().items()}
        old_registry, old_named = registry[:], dict(named)
        # Hidden from fileConfig's _clearExistingHandlers(), which would close them.
        del registry[:]
        named.clear()
        try:
            logging.config.fileConfig(path, disable_existing_loggers=False)
            finish()
        except Exception as exc:
            created = [ref() for ref in registry]
            for name, logger in _loggers().items():
                state = before.get(name)
                _restore(logger, state or _LoggerState(logging.NOTSET, [], [], True, False))
            for handler in created:
                if handler is not None:
                    _close(handler)
            registry[:] = old_registry
            named.clear()  # after closing: Handler.close() forgets its name here
            named.update(old_named)
            raise LogConfigError(path, reason(exc)) from None
        in_use, new_named = _in_use(), dict(named)
        kept = []
        for ref in old_registry:
            handler = ref()
            if handler is None:
                continue
            if id(handler) in in_use:
                kept.append(ref)
            else:
                _close(handler)
        registry[:0] = kept  # still attached somewhere (a logger the file does not name)
        named.update(new_named)  # an old handler's close() dropped the new one of its name


def close_all() -> None:
    """Detach and close every handler now, before anything new is opened (after ``--daemon``).

    python-daemon has closed the descriptors of the handlers made before it
    detached; new files or sockets may get those numbers. Closing the old
    handlers *after* making new ones, as :func:`apply` does, would then close
    the new ones' descriptors (and their garbage-collected streams would,
    later). So they go first, as ``fileConfig`` itself does it.
    """
    registry = logging._handlerList  # type: ignore[attr-defined]
    with logging._lock:  # type: ignore[attr-defined]
        for logger in _loggers().values():
            logger.handlers = []
        for ref in registry[:]:
            handler = ref()
            if handler is not None:
                _close(handler)
        del registry[:]
        logging._handlers.clear()  # type: ignore[attr-defined]


def _close(handler: logging.Handler) -> None:
    try:
        handler.flush()
        handler.close()
    except (OSError, ValueError):  # as logging.shutdown(): a broken stream is no reason to fail
        pass
