"""Storage areas: ``<data-files-path>/<CalledAETitle>/*.wl`` and their ``lockfile``.

This is wlmscpfs's file-system protocol (DCMTK wlmsetup.txt): a writer takes
a write lock (fcntl) on the area's ``lockfile`` while it changes files; wlmd
takes a shared read lock while it reads the directory and matches, so it
never sees a half-written state. Parsed files are cached by (inode, size,
mtime, ctime): only new or changed files are parsed again, and a bad file is
logged once per change rather than once per query.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from wlmd.worklist.entry import WorklistEntry, WorklistFileError, incompleteness, load_entry

LOG = logging.getLogger(__name__)

LOCKFILE_NAME = "lockfile"
WORKLIST_SUFFIX = ".wl"  # case-sensitive, as wlmscpfs
MAX_FILE_SIZE = 64 * 1024 * 1024  # no worklist entry is this big; protects memory

#: Called AE titles that may name a storage area: 1-16 of letters, digits,
#: space and ``- : @ _`` — never '.', '/' or anything that could leave the data path.
_AREA_NAME = re.compile(r"[A-Za-z0-9 :@_-]{1,16}")


def is_valid_area_name(called_ae_title: str) -> bool:
    """True if the called AE title can name a storage area (no path tricks)."""
    name = called_ae_title.strip(" ")
    return bool(name) and _AREA_NAME.fullmatch(called_ae_title.rstrip(" ")) is not None


class LockError(Exception):
    """The storage area's lockfile could not be read-locked; the text is for operators.

    ``comment`` is the short text sent to the modality as Error Comment (LO, 64 chars).
    """

    def __init__(
        self, message: str, comment: str = "Worklist storage area cannot be locked"
    ) -> None:
        super().__init__(message)
        self.comment = comment


@dataclass(frozen=True)
class _Signature:
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Signature:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass
class _Cached:
    signature: _Signature
    entry: WorklistEntry | None
    problem: str | None


class StorageArea:
    """One storage area: a directory named after a called AE title."""

    def __init__(self, path: str, file_reject: bool, lock_timeout: float | None = None) -> None:
        self.path = path
        self.lockfile = os.path.join(path, LOCKFILE_NAME)
        self.file_reject = file_reject
        self.lock_timeout = lock_timeout
        self._cache: dict[str, _Cached] = {}
        self._real_path = os.path.realpath(path)

    @contextmanager
    def read_locked(self) -> Iterator[None]:
        """Hold a shared fcntl lock on the lockfile (blocks while a writer holds it)."""
        try:
            fd = os.open(self.lockfile, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.ENOENT:
                hint = f"; create it with: touch '{self.lockfile}'"
            raise LockError(
                f"cannot open lockfile {self.lockfile}: {exc.strerror}{hint}",
                "Worklist storage area has no usable lockfile",
            ) from exc
        try:
            self._lock_shared(fd)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _lock_shared(self, fd: int) -> None:
        if self.lock_timeout is None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_SH)
            except OSError as exc:
                raise LockError(f"cannot read-lock {self.lockfile}: {exc.strerror}") from exc
            return
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.001
        while True:
            try:
                fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise LockError(f"cannot read-lock {self.lockfile}: {exc.strerror}") from exc
            if time.monotonic() >= deadline:
                raise LockError(
                    f"{self.lockfile} is write-locked by another process for more than "
                    f"{self.lock_timeout:g} s",
                    "Worklist storage area is locked by a writer",
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def entries(self) -> list[WorklistEntry]:
        """Usable entries of the area, ordered by file name. Call under the read lock."""
        names = self._worklist_names()
        fresh: dict[str, _Cached] = {}
        result: list[WorklistEntry] = []
        for name in names:
            cached = self._load(name)
            if cached is None:
                continue
            fresh[name] = cached
            if cached.entry is not None:
                result.append(cached.entry)
        self._cache = fresh
        return result

    def _worklist_names(self) -> list[str]:
        try:
            with os.scandir(self.path) as it:
                names = [e.name for e in it if e.name.endswith(WORKLIST_SUFFIX)]
        except OSError as exc:
            LOG.error("cannot read storage area %s: %s", self.path, exc.strerror)
            return []
        return sorted(names)

    def _load(self, name: str) -> _Cached | None:
        path = os.path.join(self.path, name)
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # a dangling symlink or a vanished file is no news
                LOG.warning("worklist file %s skipped: %s", path, exc.strerror)
            return None
        signature = _Signature.of(st)
        cached = self._cache.get(name)
        if cached is not None and cached.signature == signature:
            return cached
        entry: WorklistEntry | None = None
        problem = self._unusable(path, st)
        if problem is None:
            try:
                entry = load_entry(path, name)
            except WorklistFileError as exc:
                problem = str(exc)
        if entry is not None and self.file_reject:
            missing = incompleteness(entry)
            if missing:
                problem = f"incomplete worklist file rejected: {missing}"
                entry = None
        if problem:
            LOG.warning("worklist file %s skipped: %s", path, problem)
        return _Cached(signature, entry, problem)

    def _unusable(self, path: str, st: os.stat_result) -> str | None:
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        if st.st_size > MAX_FILE_SIZE:
            return f"larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB"
        if os.path.islink(path):
            target = os.path.realpath(path)
            if os.path.commonpath([target, self._real_path]) != self._real_path:
                return f"symbolic link to {target}, outside the storage area"
        return None


class WorklistStore:
    """All storage areas below ``--data-files-path``."""

    def __init__(
        self, data_files_path: str, file_reject: bool = True, lock_timeout: float | None = None
    ) -> None:
        self.root = data_files_path
        self.file_reject = file_reject
        self.lock_timeout = lock_timeout
        self._areas: dict[str, StorageArea] = {}

    def area(self, called_ae_title: str) -> StorageArea | None:
        """The storage area for a called AE title, or None if there is none."""
        if not is_valid_area_name(called_ae_title):
            return None
        name = called_ae_title.rstrip(" ")
        path = os.path.join(self.root, name)
        if not os.path.isdir(path):
            self._areas.pop(name, None)
            return None
        area = self._areas.get(name)
        if area is None:
            area = StorageArea(path, self.file_reject, self.lock_timeout)
            self._areas[name] = area
        return area
