"""Which worklist files changed: Linux inotify, through a thin ctypes binding.

The indexed snapshot (:mod:`wlmd.worklist.store`) re-reads only the files
named here instead of stat()ing every file of a storage area on every query.
That is only correct if no change can go unnoticed, so this module is
conservative: anything it cannot vouch for (queue overflow, a watch it
could not add, a storage area on a network file system, where inotify does
not see other clients' writes) makes :meth:`Watch.take_changes` answer
"everything may have changed" and the caller falls back to a full scan.

Events are queued by the kernel inside the writer's system call, so when a
writer has released the area's write lock and we hold the read lock, every
change it made is already readable from our descriptor.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import struct
from dataclasses import dataclass, field

LOG = logging.getLogger(__name__)

# <sys/inotify.h>
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC

#: Everything that can change what a directory's files contain.
AREA_EVENTS = (
    IN_MODIFY
    | IN_ATTRIB
    | IN_CLOSE_WRITE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | IN_CREATE
    | IN_DELETE
    | IN_DELETE_SELF
    | IN_MOVE_SELF
    | IN_ONLYDIR
)

_EVENT_HEADER = struct.Struct("iIII")  # wd, mask, cookie, len

#: statfs f_type of file systems where inotify misses remote changes.
_REMOTE_FILESYSTEMS = {
    0x6969: "NFS",
    0x517B: "SMB",
    0xFF534D42: "CIFS",
    0xFE534D42: "SMB2",
    0x65735546: "FUSE",
    0x47504653: "GPFS",
    0x0BD00BD0: "Lustre",
    0x73757245: "Coda",
    0x564C: "NCP",
    0x19830326: "AFS",
    0x00C36400: "CephFS",
}


class _StatFs(ctypes.Structure):
    _fields_ = [
        ("f_type", ctypes.c_long),
        ("f_bsize", ctypes.c_long),
        ("f_blocks", ctypes.c_ulong),
        ("f_bfree", ctypes.c_ulong),
        ("f_bavail", ctypes.c_ulong),
        ("f_files", ctypes.c_ulong),
        ("f_ffree", ctypes.c_ulong),
        ("f_fsid", ctypes.c_int * 2),
        ("f_namelen", ctypes.c_long),
        ("f_frsize", ctypes.c_long),
        ("f_flags", ctypes.c_long),
        ("f_spare", ctypes.c_long * 4),
    ]


def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def remote_filesystem(path: str) -> str | None:
    """The name of the network file system ``path`` is on, or None if local (or unknown)."""
    if _LIBC is None:
        return None
    buf = _StatFs()
    if _LIBC.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        return None
    return _REMOTE_FILESYSTEMS.get(buf.f_type & 0xFFFFFFFF)


@dataclass
class Changes:
    """What changed in one directory since the last call."""

    names: set[str] = field(default_factory=set)
    #: Everything may have changed (overflow, directory replaced, watch lost): rescan.
    everything: bool = False


class Watch:
    """One inotify descriptor watching a set of directories (storage areas and their root).

    A process reads only its own descriptor: the supervisor has one, and it
    gives every worker a fresh one created just before the fork (see
    :meth:`WatchSet.fork_copy`), so that events are never consumed by one
    process on behalf of another.
    """

    def __init__(self) -> None:
        if _LIBC is None:
            raise OSError(errno.ENOSYS, "libc not found")
        fd = _LIBC.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1: {os.strerror(err)}")
        self.fd: int = fd
        self._paths: dict[int, str] = {}  # wd -> directory
        self._wds: dict[str, int] = {}
        self._pending: dict[str, Changes] = {}

    def add(self, directory: str) -> None:
        """Watch ``directory``; raises OSError (e.g. ENOSPC: max_user_watches reached)."""
        wd = _LIBC.inotify_add_watch(self.fd, os.fsencode(directory), AREA_EVENTS)  # type: ignore[union-attr]
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_add_watch {directory}: {os.strerror(err)}")
        self._paths[wd] = directory
        self._wds[directory] = wd

    def watches(self, directory: str) -> bool:
        return directory in self._wds

    def drain(self) -> None:
        """Read every queued event into the pending changes (no parsing of files)."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return
            except InterruptedError:
                continue
            if not data:
                return
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        offset = 0
        while offset + _EVENT_HEADER.size <= len(data):
            wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
            offset += _EVENT_HEADER.size
            raw_name = data[offset : offset + length].split(b"\0", 1)[0]
            offset += length
            if mask & IN_Q_OVERFLOW:
                for watched in self._wds:
                    self._changes(watched).everything = True
                continue
            directory = self._paths.get(wd)
            if directory is None:
                continue
            if mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED):
                # The directory itself went away or was replaced: the watch is dead.
                self._changes(directory).everything = True
                self._paths.pop(wd, None)
                self._wds.pop(directory, None)
                continue
            if raw_name:
                self._changes(directory).names.add(os.fsdecode(raw_name))

    def _changes(self, directory: str) -> Changes:
        return self._pending.setdefault(directory, Changes())

    def take_changes(self, directory: str) -> Changes:
        """Changes in ``directory`` since the last call; ``everything`` if it isn't watched."""
        self.drain()
        changes = self._pending.pop(directory, Changes())
        if directory not in self._wds:
            changes.everything = True
        return changes

    def peek_directories(self) -> list[str]:
        """Directories with pending changes (after :meth:`drain`)."""
        return [d for d, c in self._pending.items() if c.names or c.everything]

    def inherit_pending(self, other: Watch) -> None:
        """Take over ``other``'s not yet applied changes (a copy; ``other`` keeps its own)."""
        for directory, changes in other._pending.items():
            mine = self._changes(directory)
            mine.names |= changes.names
            mine.everything = mine.everything or changes.everything

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def fileno(self) -> int:
        return self.fd
