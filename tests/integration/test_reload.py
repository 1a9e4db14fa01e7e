"""``systemctl reload`` (SIGHUP) with a broken logging configuration keeps the audit trail.

A real wlmd logs to a file through a ``--log-config`` FileHandler; the test
breaks the file, sends SIGHUP, and a real findscu query must still be
logged to the old file, after one error line saying the new configuration
was not taken. Then the file is fixed (pointing at another log file) and a
second SIGHUP must switch to it. The reload's own log line is the signal
that it was handled; every wait has a deadline.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"
DEADLINE = 20.0

CONF = """\
[loggers]
keys = root
[handlers]
keys = file
[formatters]
keys = plain
[logger_root]
level = INFO
handlers = file
[handler_file]
class = FileHandler
level = INFO
formatter = plain
args = ({path!r}, "a")
[formatter_plain]
format = %(levelname)s %(assoc)s%(message)s
"""


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    pytest.fail(f"no {what} within {DEADLINE}s", pytrace=False)


def text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def query_is_logged(port: int, log: Path, patient: str) -> None:
    """Run a real findscu query; its C-FIND and association lines must reach ``log``."""
    lines = ("C-FIND FINDSCU -> WLMD", "association FINDSCU -> WLMD")
    before = [text(log).count(line) for line in lines]
    result = findscu(port, aec=AREA, keys=[f"PatientID={patient}"])
    assert result.final_status == 0x0000, result.describe()
    assert [ds.PatientID for ds in result.datasets] == [patient]
    for line, count in zip(lines, before, strict=True):
        # the association's line comes when its worker ends, after findscu's exit
        wait_for(lambda: text(log).count(line) > count, f"a new {line!r} line in {log}")  # noqa: B023


@pytest.mark.parametrize(
    "breakage",
    [
        lambda conf: conf.replace("class = FileHandler", "class = NoSuchHandler"),
        lambda conf: conf.replace("level = INFO\nhandlers", "level = LOUD\nhandlers"),
        lambda conf: "",
        # fileConfig fails after taking the root logger's handlers away
        lambda conf: conf.replace("handlers = file", "handlers = file, nosuch"),
    ],
    ids=["unknown handler class", "bad level", "emptied", "undefined handler"],
)
def test_broken_reload_keeps_logging_then_a_fixed_one_takes_effect(
    tmp_path: Path, breakage: Callable[[str], str]
) -> None:
    data = tmp_path / "worklists"
    make_area(data, AREA, {"e1.wl": complete_entry(PatientID="P1")})
    old_log, new_log = tmp_path / "old.log", tmp_path / "new.log"
    conf = tmp_path / "logging.conf"
    conf.write_text(CONF.format(path=str(old_log)))
    with servers.wlmd(data, ["-lc", str(conf)], log_dir=tmp_path) as server:
        query_is_logged(server.port, old_log, "P1")

        conf.write_text(breakage(CONF.format(path=str(new_log))))
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "not reloaded" in text(old_log), "reload error line")
        (error,) = [line for line in text(old_log).splitlines() if "not reloaded" in line]
        assert error.startswith(f"ERROR SIGHUP: logging configuration {conf} not reloaded: ")
        assert error.endswith("; keeping the previous one")
        # The audit trail goes on, in the old file, at INFO.
        query_is_logged(server.port, old_log, "P1")
        assert text(new_log) == ""  # (a failed attempt may have created it)

        conf.write_text(CONF.format(path=str(new_log)))
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "logging configuration reloaded" in text(new_log), "reload line")
        lines_in_old = text(old_log).count("\n")
        query_is_logged(server.port, new_log, "P1")
        assert text(old_log).count("\n") == lines_in_old  # the old file is no longer written
        assert server.alive()
