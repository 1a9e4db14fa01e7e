"""The writer's half of the lockfile protocol (DCMTK wlmsetup.txt, README "Storage layout").

A writer holds an exclusive fcntl lock (``lockf``, never ``flock``: wlmscpfs
and wlmd take POSIX record locks) on the area's ``lockfile`` for the whole
change, so a query sees the area before or after it, never in between.
Waiting is bounded: a writer that cannot get the lock within the timeout
says who holds it (a query in a long association, another wlmctl, a RIS
export), found the way the server finds the writer it waited for
(:func:`wlmd.worklist.lockfile.lock_holder`).

POSIX locks belong to the process and are dropped when *any* descriptor of
the file is closed, so nothing else may open the lockfile while it is held.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from wlmd.authoring.errors import AreaProblem, LockTimeout
from wlmd.worklist.layout import LOCKFILE_NAME
from wlmd.worklist.lockfile import lock_holder

#: How long a writer waits for the lock by default (seconds): a query holds
#: its read lock for milliseconds, so a long wait means something is stuck.
DEFAULT_LOCK_TIMEOUT = 10.0


@contextmanager
def write_locked(area_path: str, timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the write lock on ``area_path``'s lockfile; ``timeout`` None waits forever."""
    lockfile = os.path.join(area_path, LOCKFILE_NAME)
    if not os.path.isdir(area_path):
        raise AreaProblem(
            f"no storage area {area_path} (create it with: mkdir '{area_path}' "
            f"&& touch '{lockfile}')"
        )
    try:
        # O_RDWR: a write lock needs a descriptor open for writing (POSIX).
        fd = os.open(lockfile, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        hint = ""
        if exc.errno == errno.ENOENT:
            hint = f"; create it with: touch '{lockfile}'"
        elif exc.errno in (errno.EACCES, errno.EPERM):
            hint = " (writers need write access to it: the group wlmd-writers)"
        raise AreaProblem(f"cannot open {lockfile} for writing: {exc.strerror}{hint}") from exc
    try:
        _lock_exclusive(fd, lockfile, timeout)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_exclusive(fd: int, lockfile: str, timeout: float | None) -> None:
    if timeout is None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX)
        except OSError as exc:
            raise AreaProblem(f"cannot write-lock {lockfile}: {exc.strerror}") from exc
        return
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise AreaProblem(f"cannot write-lock {lockfile}: {exc.strerror}") from exc
        if time.monotonic() >= deadline:
            raise LockTimeout(
                f"{lockfile} is locked {lock_holder(fd, for_write=True)}: no write lock "
                f"within {timeout:g} s (--lock-timeout)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
