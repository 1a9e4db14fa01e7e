"""The lock protocol of a storage area's ``lockfile``, as wlmscpfs's (DCMTK wlmsetup.txt).

A writer takes a write lock (fcntl) on the area's ``lockfile`` while it
changes files; wlmd takes a shared read lock while it reads the directory
and matches, so it never sees a half-written state. A wait for a writer is
bounded by --lock-timeout (or not at all, as wlmscpfs), and a long one is
logged with the writer that caused it (:func:`lock_holder`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

from wlmd.worklist.layout import AreaUnavailable

#: the storage areas' logger, as before the lock protocol had a module of its own
LOG = logging.getLogger("wlmd.worklist.store")

#: A query that waited this long (seconds) for a writer's lock is logged as a warning.
SLOW_LOCK_WAIT = 1.0


class LockError(AreaUnavailable):
    """The storage area's lockfile could not be read-locked."""

    def __init__(
        self, message: str, comment: str = "Worklist storage area cannot be locked"
    ) -> None:
        super().__init__(message, comment)


class LockBusy(AreaUnavailable):
    """A non-blocking read lock found a writer (only the supervisor's refresh uses this)."""


def lock_holder(fd: int, for_write: bool = False) -> str:
    """Who holds the write lock on ``fd``'s file, for the log: "by pid 42 (ris-export ...)".

    F_GETLK reports one process holding a conflicting lock; its command line
    tells the operator which writer to look at. The pid is that of the lock's
    owner as seen in our pid namespace (0 when it is in another namespace or
    on another NFS client). ``for_write`` asks what conflicts with a write
    lock, so a reader's shared lock (a query) is found too (a writer waiting).
    """
    wanted = fcntl.F_WRLCK if for_write else fcntl.F_RDLCK
    probe = struct.pack("hhqqi4x", wanted, os.SEEK_SET, 0, 0, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
    except OSError:
        return "by another process"
    lock_type, _whence, _start, _length, pid = struct.unpack("hhqqi4x", answer)
    if lock_type == fcntl.F_UNLCK:
        return "by another process (released meanwhile)"
    if pid <= 0:
        return "by a process outside this host or pid namespace"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = " ".join(handle.read().decode("utf-8", "replace").replace("\0", " ").split())
    except OSError:
        command = ""
    return f"by pid {pid}" + (f" ({command[:200]})" if command else "")


@contextmanager
def read_locked(
    lockfile: str, lock_timeout: float | None = None, blocking: bool = True
) -> Iterator[None]:
    """Hold a shared fcntl lock on ``lockfile`` (blocks while a writer holds it).

    ``blocking=False`` raises :class:`LockBusy` at once if a writer holds it.
    """
    try:
        fd = os.open(lockfile, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        hint = ""
        if exc.errno == errno.ENOENT:
            hint = f"; create it with: touch '{lockfile}'"
        raise LockError(
            f"cannot open lockfile {lockfile}: {exc.strerror}{hint}",
            "Worklist storage area has no usable lockfile",
        ) from exc
    try:
        if blocking:
            _lock_shared(fd, lockfile, lock_timeout)
        else:
            try:
                fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EACCES, errno.EAGAIN):
                    raise LockBusy(lockfile) from None
                raise LockError(f"cannot read-lock {lockfile}: {exc.strerror}") from exc
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_shared(fd: int, lockfile: str, lock_timeout: float | None) -> None:
    """Take the read lock, waiting for a writer (up to --lock-timeout, or forever).

    A wait of :data:`SLOW_LOCK_WAIT` or more is logged as a warning with the
    writer that caused it, looked up while it still holds the lock: a
    modality waiting seconds for its worklist is what an operator is
    called about, and the cause is a RIS export, not wlmd.
    """
    started = time.monotonic()
    if _try_lock_shared(fd, lockfile):
        return
    holder = lock_holder(fd)
    if lock_timeout is None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH)
        except OSError as exc:
            raise LockError(f"cannot read-lock {lockfile}: {exc.strerror}") from exc
    else:
        deadline = started + lock_timeout
        delay = 0.001
        while not _try_lock_shared(fd, lockfile):
            if time.monotonic() >= deadline:
                raise LockError(
                    f"{lockfile} is write-locked {lock_holder(fd)} for more than "
                    f"{lock_timeout:g} s (--lock-timeout)",
                    "Worklist storage area is locked by a writer",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
    waited = time.monotonic() - started
    if waited >= SLOW_LOCK_WAIT:
        LOG.warning(
            "waited %.1f s for the read lock on %s: it was write-locked %s",
            waited,
            lockfile,
            holder,
        )


def _try_lock_shared(fd: int, lockfile: str) -> bool:
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EAGAIN):
            raise LockError(f"cannot read-lock {lockfile}: {exc.strerror}") from exc
        return False
    return True
