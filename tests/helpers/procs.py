"""Reading wlmd's processes from the kernel, and polling for a condition.

What the supervisor did is read from ``/proc``, not guessed: its children from
``/proc/<pid>/task/*/children`` (a zombie stays listed until it is reaped),
process titles from ``/proc/<pid>/cmdline`` (setproctitle). Where no
readiness signal exists (a worker appearing, a log line), tests poll with
:func:`wait_for`, bounded in time and count.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

WAIT = 10.0


def wait_for(condition: Callable[[], object], what: str, timeout: float = WAIT) -> object:
    """Poll ``condition`` until it is truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    for _ in range(5000):
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            break
        time.sleep(delay)  # poll interval, not synchronisation
        delay = min(delay * 2, 0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}", pytrace=False)


def children(pid: int) -> list[int]:
    """The PIDs of ``pid``'s children, zombies included (empty once pid is gone)."""
    kids: list[int] = []
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):
                kids += [
                    int(k) for k in Path(f"/proc/{pid}/task/{task}/children").read_text().split()
                ]
    return kids


#: the process title of an idle spare worker (wlmd.supervisor), serving no connection
SPARE_TITLE = "wlmd: spare worker"


def serving(pid: int) -> list[int]:
    """The children of supervisor ``pid`` that serve a connection (zombies included).

    Idle spare workers (``--spare-workers``, 4 by default) wait for a connection
    and are not counted; a spare serving one is, as a worker forked for it.
    """
    return [kid for kid in children(pid) if not title(kid).startswith(SPARE_TITLE)]


def title(pid: int) -> str:
    """The process title as ps shows it ("" once the process is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def dead(pid: int) -> bool:
    """Whether ``pid`` has exited (gone, or a zombie nobody reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def stop_gracefully(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    """SIGTERM a started wlmd and require exit status 0 within ``timeout`` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        returncode = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"wlmd still running {timeout}s after SIGTERM", pytrace=False)
    assert returncode == 0, f"exit status {returncode} after SIGTERM\n{log.read_text()}"


def kill_session(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGKILL ``proc``'s session (the supervisor and any worker it left) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
