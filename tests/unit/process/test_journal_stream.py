"""Lines for the systemd journal: detecting $JOURNAL_STREAM, sd-daemon priority prefixes.

The journal here is a real file standing in for journald's stream: what
matters to wlmd is only whether stderr's device and inode are the ones in
``$JOURNAL_STREAM`` (systemd.exec(5)).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from wlmd.process import journal, logsetup
from wlmd.process.journal import StderrHandler, is_journal_stream, prefixed, priority


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put the root logger back as it was: a test here installs wlmd's default handler."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    quiet = logging.getLogger("pynetdicom").level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("pynetdicom").setLevel(quiet)


def _stream_id(fd: int) -> str:
    st = os.fstat(fd)
    return f"{st.st_dev}:{st.st_ino}"


@pytest.fixture
def stderr_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TextIO]:
    """A real file for sys.stderr (no $JOURNAL_STREAM yet); tests call _use() on it.

    Not patched here: pytest's capture puts its own sys.stderr back between
    fixture set-up and the test.
    """
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    with open(tmp_path / "stderr", "w+", encoding="utf-8") as handle:
        yield handle


def _use(handle: TextIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", handle)


def _written(handle: TextIO) -> str:
    handle.flush()
    handle.seek(0)
    return handle.read()


def test_journal_stream_is_the_descriptor_named_by_the_variable(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as a, open(tmp_path / "b", "w") as b:
        env = {"JOURNAL_STREAM": _stream_id(a.fileno())}
        assert is_journal_stream(a.fileno(), env)
        # Inherited by a child whose stderr is something else: not the journal.
        assert not is_journal_stream(b.fileno(), env)


@pytest.mark.parametrize("value", ["", "12", "12:", ":34", "a:b", "1:2:3", " 1:2"])
def test_malformed_journal_stream_is_not_the_journal(value: str, tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as a:
        assert not is_journal_stream(a.fileno(), {"JOURNAL_STREAM": value})


def test_closed_descriptor_is_not_the_journal(tmp_path: Path) -> None:
    with open(tmp_path / "a", "w") as a:
        fd = a.fileno()
        env = {"JOURNAL_STREAM": _stream_id(fd)}
    assert not is_journal_stream(fd, env)


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (logging.CRITICAL, 2),
        (logging.ERROR, 3),
        (logging.WARNING, 4),
        (logging.INFO, 6),
        (logging.DEBUG, 7),
        (logsetup.TRACE, 7),
        (logging.ERROR + 5, 3),  # a custom level between two takes the lower one's
    ],
)
def test_priority_of_levels(level: int, expected: int) -> None:
    assert priority(level) == expected


def test_every_line_of_a_record_is_prefixed() -> None:
    # journald makes one entry per line: a traceback's tail must not land at info
    assert prefixed("one\ntwo", logging.ERROR) == "<3>one\n<3>two"


def test_stderr_line_is_prefixed_only_in_the_journal(
    stderr_file: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(stderr_file, monkeypatch)
    journal.stderr_line("wlmd: plain\nand one line", logging.ERROR)
    monkeypatch.setenv("JOURNAL_STREAM", _stream_id(stderr_file.fileno()))
    journal.stderr_line("wlmd: /etc/wlmd/wlmd.conf:2: unknown setting 'x'", logging.ERROR)
    assert _written(stderr_file) == (
        "wlmd: plain and one line\n<3>wlmd: /etc/wlmd/wlmd.conf:2: unknown setting 'x'\n"
    )


def test_stderr_handler_prefixes_in_the_journal_only(
    stderr_file: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(stderr_file, monkeypatch)
    plain = StderrHandler()
    monkeypatch.setenv("JOURNAL_STREAM", _stream_id(stderr_file.fileno()))
    prefixing = StderrHandler()
    assert (plain.journal, prefixing.journal) == (False, True)
    logger = logging.getLogger("wlmd.test.journal")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        for handler in (plain, prefixing):
            logger.addHandler(handler)
            logger.warning("lock held")
            logger.removeHandler(handler)
    finally:
        logger.propagate = True
    assert _written(stderr_file) == "lock held\n<4>lock held\n"


def test_default_logging_in_the_journal_has_prefixes_and_no_timestamp(
    stderr_file: TextIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(stderr_file, monkeypatch)
    monkeypatch.setenv("JOURNAL_STREAM", _stream_id(stderr_file.fileno()))
    logsetup.setup_logging(_config("info"))
    try:
        logsetup.set_association_id("a7")
        logging.getLogger("wlmd.test").info("C-FIND from MOD1: 3 matches")
        logging.getLogger("wlmd.test").critical("cannot start: cannot listen on [::]:104")
    finally:
        logsetup.set_association_id(None)
    assert _written(stderr_file) == (
        "<6>INFO [a7] C-FIND from MOD1: 3 matches\n"
        "<2>CRITICAL [a7] cannot start: cannot listen on [::]:104\n"
    )


def test_stderr_handler_from_a_log_config_file(
    stderr_file: TextIO, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use(stderr_file, monkeypatch)
    monkeypatch.setenv("JOURNAL_STREAM", _stream_id(stderr_file.fileno()))
    ini = tmp_path / "logging.conf"
    ini.write_text(
        "[loggers]\nkeys = root\n[handlers]\nkeys = err\n[formatters]\nkeys = f\n"
        "[logger_root]\nlevel = INFO\nhandlers = err\n"
        "[handler_err]\nclass = wlmd.logsetup.StderrHandler\nformatter = f\nargs = ()\n"
        "[formatter_f]\nformat = %(levelname)s %(assoc)s%(message)s\n"
    )
    logsetup.setup_logging(_Config("warn", str(ini)))
    logging.getLogger("wlmd.test").error("lockfile missing")
    assert _written(stderr_file) == "<3>ERROR lockfile missing\n"


class _Config:
    def __init__(self, level: str, log_config: str | None = None) -> None:
        self.log_level = level
        self.log_config = log_config


def _config(level: str) -> _Config:
    return _Config(level)


# --- ServiceHandler: the journal under systemd, else syslog -------------------------------


@pytest.fixture
def syslog(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = str(tmp_path / "dev-log")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.setblocking(False)
    yield path, server
    server.close()


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("wlmd.test", level, __file__, 1, message, None, None)


def _datagrams(server: socket.socket) -> list[bytes]:
    got = []
    for _ in range(100):
        try:
            got.append(server.recv(4096))
        except BlockingIOError:
            break
    return got


def test_service_handler_in_the_journal_writes_each_line_once_to_stderr(
    stderr_file: TextIO, syslog: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(stderr_file, monkeypatch)
    monkeypatch.setenv("JOURNAL_STREAM", _stream_id(stderr_file.fileno()))
    path, server = syslog
    handler = logsetup.ServiceHandler(path, "daemon", "CRITICAL")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        handler.handle(_record(logging.CRITICAL, "cannot start: port in use"))
        handler.handle(_record(logging.INFO, "association accepted"))
    finally:
        handler.close()
    assert _written(stderr_file) == (
        "<2>CRITICAL cannot start: port in use\n<6>INFO association accepted\n"
    )
    assert _datagrams(server) == []  # not also through syslog


def test_service_handler_elsewhere_uses_syslog_and_echoes_critical(
    stderr_file: TextIO, syslog: tuple[str, socket.socket], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(stderr_file, monkeypatch)
    path, server = syslog
    handler = logsetup.ServiceHandler(path, "daemon", "CRITICAL")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    try:
        handler.handle(_record(logging.INFO, "association accepted"))
        handler.handle(_record(logging.CRITICAL, "cannot start: port in use"))
    finally:
        handler.close()
    pid = os.getpid()
    # daemon (3) * 8 + info (6) = 30, + crit (2) = 26; the handler adds the ident
    assert _datagrams(server) == [
        f"<30>wlmd[{pid}]: INFO association accepted\0".encode(),
        f"<26>wlmd[{pid}]: CRITICAL cannot start: port in use\0".encode(),
    ]
    assert _written(stderr_file) == f"wlmd[{pid}]: CRITICAL cannot start: port in use\n"


def test_service_handler_rejects_an_unknown_stderr_level() -> None:
    with pytest.raises(ValueError, match="LOUD"):
        logsetup.ServiceHandler("/dev/log", "daemon", "LOUD")
