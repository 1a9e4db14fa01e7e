"""Logging set-up: wlmscpfs's levels, the association tag, -lc files."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from wlmd.process import logsetup
from wlmd.process.logsetup import (
    TRACE,
    AssociationFilter,
    LogConfigError,
    reload_logging,
    set_association_id,
    setup_logging,
)

LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} wlmd\[\d+\] (?P<level>\w+) (?P<rest>.*)")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Leave the logging module as we found it: these tests reconfigure it globally."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("pynetdicom", "wlmd", "wlmd.test")}
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    for name, old in levels.items():
        logger = logging.getLogger(name)
        logger.setLevel(old)
        for handler in logger.handlers[:]:
            logger.removeHandler(handler)
    set_association_id(None)
    set_association_id(None, this_thread_only=True)


def config(level: str = "warn", log_config: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(log_level=level, log_config=log_config)


@pytest.mark.parametrize(
    ("level", "root_level", "pynetdicom_level"),
    [
        ("fatal", logging.CRITICAL, logging.CRITICAL),
        ("error", logging.ERROR, logging.ERROR),
        ("warn", logging.WARNING, logging.WARNING),
        ("info", logging.INFO, logging.WARNING),  # pynetdicom's INFO is a PDU dump
        ("debug", logging.DEBUG, logging.DEBUG),
        ("trace", TRACE, TRACE),
    ],
)
def test_levels(level: str, root_level: int, pynetdicom_level: int) -> None:
    setup_logging(config(level))
    assert logging.getLogger().level == root_level
    assert logging.getLogger("pynetdicom").level == pynetdicom_level


def test_trace_is_below_debug_and_named() -> None:
    assert TRACE < logging.DEBUG
    assert logging.getLevelName(TRACE) == "TRACE"


def test_line_format_and_association_tag(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(config("info"))
    log = logging.getLogger("wlmd.test")
    log.info("no association yet")
    set_association_id("a12")
    log.warning("C-FIND from %s", "MODALITY1")
    logging.getLogger("pynetdicom").warning("from the library")
    set_association_id(None)
    log.info("done")
    lines = capsys.readouterr().err.splitlines()
    parsed = [LINE.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert [(m["level"], m["rest"]) for m in parsed if m] == [
        ("INFO", "no association yet"),
        ("WARNING", "[a12] C-FIND from MODALITY1"),
        ("WARNING", "[a12] from the library"),
        ("INFO", "done"),
    ]


def test_quiet_levels_filter(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(config("error"))
    log = logging.getLogger("wlmd.test")
    log.warning("hidden")
    log.error("shown")
    logging.getLogger("pynetdicom").info("hidden too")
    err = capsys.readouterr().err
    assert "shown" in err
    assert "hidden" not in err


def test_setup_twice_installs_one_handler(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(config("info"))
    reload_logging(config("info"))
    logging.getLogger("wlmd.test").info("once")
    assert capsys.readouterr().err.count("once") == 1


def _record() -> logging.LogRecord:
    return logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)


@pytest.mark.parametrize(("association_id", "tag"), [(None, ""), ("", ""), ("a7", "[a7] ")])
def test_association_filter(association_id: str | None, tag: str) -> None:
    set_association_id(association_id)
    record = _record()
    assert AssociationFilter().filter(record) is True
    assert record.__dict__["assoc"] == tag


def test_thread_only_association_id() -> None:
    set_association_id("process")
    seen: list[str] = []

    def worker() -> None:
        set_association_id("t1", this_thread_only=True)
        record = _record()
        AssociationFilter().filter(record)
        seen.append(record.__dict__["assoc"])

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    record = _record()
    AssociationFilter().filter(record)
    assert seen == ["[t1] "]
    assert record.__dict__["assoc"] == "[process] "


# --- -lc ------------------------------------------------------------------------------

GOOD_INI = """\
[loggers]
keys=root

[handlers]
keys=file

[formatters]
keys=plain

[logger_root]
level=INFO
handlers=file

[handler_file]
class=FileHandler
level=NOTSET
formatter=plain
args=({path!r}, "a")

[formatter_plain]
format=%(levelname)s %(assoc)s%(message)s
"""


def test_log_config_file(tmp_path: Path) -> None:
    out = tmp_path / "wlmd.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(GOOD_INI.format(path=str(out)))
    setup_logging(config(log_config=str(ini)))
    set_association_id("a3")
    logging.getLogger("wlmd.test").info("to the file")
    logging.getLogger("pynetdicom").info("PDU dump, not wanted at INFO")
    for handler in logging.getLogger().handlers:
        handler.flush()
    assert out.read_text() == "INFO [a3] to the file\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "the file contains no settings"),
        ("# only a comment\n\n", "the file contains no settings"),
        ("[handlers]\nkeys=\n", "missing section or key 'formatters'"),
        ("this is not [an ini file\n", "File contains no section headers"),
        ("[loggers]\nkeys=root\n", "missing section or key"),
        (
            GOOD_INI.replace("class=FileHandler", "class=NoSuchHandler").format(path="x"),
            "NoSuchHandler",
        ),
        (
            "log4cplus.rootLogger = DEBUG, console\n",
            "DCMTK (log4cplus) logger config",
        ),
    ],
)
def test_broken_log_config_file(tmp_path: Path, content: str, reason: str) -> None:
    ini = tmp_path / "broken.ini"
    ini.write_text(content)
    with pytest.raises(LogConfigError) as caught:
        setup_logging(config(log_config=str(ini)))
    message = str(caught.value)
    assert message.startswith(f"bad --log-config file '{ini}': ")
    assert reason in message
    assert "\n" not in message


def _flush() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()


#: ways to break GOOD_INI that fail at different steps of fileConfig
BROKEN_EDITS = {
    "not an ini file": lambda ini: "garbage",
    "unknown handler class": lambda ini: ini.replace("class=FileHandler", "class=NoSuchHandler"),
    "formatter section missing": lambda ini: ini.replace("[formatter_plain]", "[formatter_x]"),
    "log file in a missing directory": lambda ini: ini.replace("wlmd.log", "no/such/dir/x.log"),
    "bad level": lambda ini: ini.replace("level=INFO", "level=LOUD"),
    "second handler broken": lambda ini: (
        ini.replace("keys=file", "keys=file,other", 1).replace(
            "handlers=file", "handlers=file,other"
        )
        + "[handler_other]\nclass=NoSuchHandler\nargs=()\n"
    ),
    "emptied": lambda ini: "",
    # fileConfig fails after taking the root logger's handlers away
    "root names an undefined handler": lambda ini: ini.replace("handlers=file", "handlers=file,x"),
}


@pytest.mark.parametrize("edit", BROKEN_EDITS.values(), ids=BROKEN_EDITS.keys())
def test_reload_with_broken_file_keeps_the_previous_configuration(tmp_path: Path, edit) -> None:
    """A bad edit + SIGHUP must not cost the audit trail (issue 11, item 5)."""
    out = tmp_path / "wlmd.log"
    ini = tmp_path / "logging.ini"
    good = GOOD_INI.format(path=str(out))
    ini.write_text(good)
    setup_logging(config(log_config=str(ini)))
    root = logging.getLogger()
    before = (root.handlers[:], root.level, logging.getLogger("pynetdicom").level)
    ini.write_text(edit(good))

    assert reload_logging(config("warn", str(ini))) is False  # must not raise

    assert (root.handlers, root.level, logging.getLogger("pynetdicom").level) == before
    logging.getLogger("wlmd.test").info("C-FIND after the failed reload")
    _flush()
    lines = out.read_text().splitlines()
    assert lines[0].startswith(f"ERROR SIGHUP: logging configuration {ini} not reloaded: ")
    assert lines[0].endswith("; keeping the previous one")
    assert lines[1:] == ["INFO C-FIND after the failed reload"]


def test_failed_reload_closes_only_what_it_opened(tmp_path: Path) -> None:
    out, half = tmp_path / "wlmd.log", tmp_path / "half.log"
    ini = tmp_path / "logging.ini"
    good = GOOD_INI.format(path=str(out))
    ini.write_text(good)
    setup_logging(config(log_config=str(ini)))
    old = logging.getLogger().handlers[0]
    assert isinstance(old, logging.FileHandler)
    stream = old.stream
    # The new file's first handler opens half.log, its second cannot be made.
    ini.write_text(
        good.replace("keys=file", "keys=file,other", 1)
        .replace("handlers=file", "handlers=file,other")
        .replace(str(out), str(half))
        + "[handler_other]\nclass=NoSuchHandler\nargs=()\n"
    )
    assert reload_logging(config("warn", str(ini))) is False
    # the old handler was never closed (a FileHandler would reopen: same stream, then)
    assert old.stream is stream and not stream.closed
    assert half.exists()  # the attempt did open it ...
    assert str(half) not in _open_files()  # ... and closed it again
    assert str(out) in _open_files()


def _open_files() -> set[str]:
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, gone already
            found.add(os.readlink(f"/proc/self/fd/{fd}"))
    return found


def test_good_reload_switches_files_and_closes_the_old_handler(tmp_path: Path) -> None:
    first, second = tmp_path / "first.log", tmp_path / "second.log"
    ini = tmp_path / "logging.ini"
    ini.write_text(GOOD_INI.format(path=str(first)))
    setup_logging(config(log_config=str(ini)))
    old = logging.getLogger().handlers[0]
    ini.write_text(GOOD_INI.format(path=str(second)))
    assert reload_logging(config("warn", str(ini))) is True
    logging.getLogger("wlmd.test").info("after the reload")
    _flush()
    assert old not in logging.getLogger().handlers
    assert isinstance(old, logging.FileHandler) and old.stream is None  # closed
    assert "after the reload" not in first.read_text()
    assert second.read_text() == "INFO after the reload\n"


def test_shipped_example_log_config_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """etc/logging.conf (shipped as the example for -lc) must be a working config."""
    import pathlib

    import wlmd.process.logsetup as logsetup

    example = pathlib.Path(__file__).resolve().parents[3] / "etc" / "logging.conf"
    text = example.read_text().replace('"/dev/log"', repr(str(tmp_path / "no-syslog")))
    copy = tmp_path / "logging.conf"
    copy.write_text(text)

    class Cfg:
        log_level = "warn"
        log_config = str(copy)

    logsetup.setup_logging(Cfg())  # type: ignore[arg-type]
    root = logging.getLogger()
    # One handler, so no line can reach the journal twice (issue 11, item 4).
    assert [type(h) for h in root.handlers] == [logsetup.ServiceHandler]
    assert root.handlers[0].stderr_level == logging.CRITICAL  # type: ignore[attr-defined]
    assert root.level == logging.INFO


# --- syslog ----------------------------------------------------------------------------


@pytest.fixture
def syslog_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A real syslog-style datagram socket (what /dev/log is), bound in tmp_path."""
    path = str(tmp_path / "log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    yield path, server
    server.close()


def _syslog_record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("wlmd.test", level, __file__, 1, message, None, None)


def test_syslog_handler_sends_daemon_facility_with_ident(syslog_socket) -> None:
    path, server = syslog_socket
    handler = logsetup.SyslogHandler(path, "daemon")
    handler.setFormatter(logging.Formatter(logsetup.SYSLOG_FORMAT))
    handler.addFilter(AssociationFilter())
    handler.handle(_syslog_record("C-FIND from CT1: 3 matches"))
    handler.handle(_syslog_record("worker 12 exited with status 1", logging.ERROR))
    handler.handle(_syslog_record("trace detail", TRACE))
    received = [server.recv(4096) for _ in range(3)]
    handler.close()
    pid = os.getpid()
    # facility daemon (3): <3*8 + severity>; info=6, err=3, debug=7
    assert received[0] == f"<30>wlmd[{pid}]: INFO C-FIND from CT1: 3 matches\0".encode()
    assert received[1].startswith(f"<27>wlmd[{pid}]: ERROR ".encode())
    assert received[2].startswith(b"<31>")


def test_syslog_handler_without_dev_log_keeps_running_on_stderr(tmp_path: Path, capsys) -> None:
    handler = logsetup.SyslogHandler(str(tmp_path / "missing"), "daemon")  # must not raise
    handler.setFormatter(logging.Formatter("%(message)s"))
    for n in range(3):
        handler.handle(_syslog_record(f"line {n}"))
    handler.close()
    err = capsys.readouterr().err
    assert err.count("unavailable; logging to stderr") == 1
    assert [line for line in err.splitlines() if line.startswith("line ")] == [
        "line 0",
        "line 1",
        "line 2",
    ]


def test_syslog_handler_comes_back_when_syslog_does(tmp_path: Path, capsys) -> None:
    path = str(tmp_path / "log")
    handler = logsetup.SyslogHandler(path, "daemon")
    handler.RETRY_SECONDS = 0.0
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.handle(_syslog_record("while down"))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(5)
    try:
        handler.handle(_syslog_record("after start"))
        assert server.recv(4096).endswith(b"after start\0")
        # syslog restarts: the old socket is gone, a new one is bound at the same path
        server.close()
        os.unlink(path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        server.bind(path)
        server.settimeout(5)
        handler.handle(_syslog_record("after restart"))
        assert server.recv(4096).endswith(b"after restart\0")
    finally:
        server.close()
        handler.close()
    err = capsys.readouterr().err
    assert "while down" in err and "is back" in err
    assert "after start" not in err and "after restart" not in err


def test_detached_default_logging_goes_to_syslog() -> None:
    try:
        setup_logging(config("info"), detached=True)
        ours = [h for h in logging.getLogger().handlers if getattr(h, logsetup._OURS, False)]
        assert len(ours) == 1 and isinstance(ours[0], logsetup.SyslogHandler)
    finally:
        setup_logging(config("warn"), detached=False)
    ours = [h for h in logging.getLogger().handlers if getattr(h, logsetup._OURS, False)]
    assert isinstance(ours[0], logging.StreamHandler)


def _exc_info(exc: BaseException):  # type: ignore[no-untyped-def]
    try:
        raise exc
    except BaseException:
        import sys

        return sys.exc_info()


def _through_loggers(name: str, msg: object, exc: BaseException) -> logging.LogRecord:
    """A record logged by ``name`` at ERROR with ``exc``, as the handlers receive it."""
    seen: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    keep = Keep(logging.DEBUG)
    logging.getLogger().addHandler(keep)
    logger = logging.getLogger(name)
    saved = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        logger.error(msg, exc_info=_exc_info(exc))
    finally:
        logger.setLevel(saved)
        logging.getLogger().removeHandler(keep)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(("level", "tamed"), [("warn", True), ("info", True), ("debug", False)])
def test_pynetdicom_errors_are_one_warning_line_below_debug(level: str, tamed: bool) -> None:
    setup_logging(config(level))
    try:
        exc = ValueError("Invalid 'Called AE Title'")
        record = _through_loggers("pynetdicom.dul", "Unable to decode PDU", exc)
        echo = _through_loggers("pynetdicom.transport", exc, exc)  # logger.exception(exc)
        empty = _through_loggers("pynetdicom.dul", "Unable to decode", AssertionError())
        ours = _through_loggers("wlmd.worker", "x", exc)
    finally:
        setup_logging(config("warn"))
    if tamed:
        assert (record.levelname, record.exc_info) == ("WARNING", None)
        assert record.getMessage() == "Unable to decode PDU (ValueError: Invalid 'Called AE Title')"
        assert echo.getMessage() == "ValueError: Invalid 'Called AE Title'"
        assert empty.getMessage() == "Unable to decode (AssertionError)"
    else:
        assert (record.levelname, echo.levelname) == ("ERROR", "ERROR")
        assert record.exc_info is not None
    # wlmd's own errors keep their level and traceback
    assert ours.levelname == "ERROR" and ours.exc_info is not None


def test_log_throttle_counts_what_it_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [100.0]
    monkeypatch.setattr(logsetup.time, "monotonic", lambda: now[0])
    throttle = logsetup.LogThrottle(burst=3, period=10.0)
    assert [throttle.take() for _ in range(5)] == ["", "", "", None, None]
    now[0] += 9.9
    assert throttle.take() is None
    now[0] += 0.1  # a new window: the first line reports the three dropped
    assert [throttle.take() for _ in range(4)] == [" (3 more not logged)", "", "", None]
