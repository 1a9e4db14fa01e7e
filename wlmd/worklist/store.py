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
import struct
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from wlmd.worklist.entry import WorklistEntry, WorklistFileError, incompleteness, load_entry
from wlmd.worklist.index import AreaIndex
from wlmd.worklist.match import Probe
from wlmd.worklist.watch import Watch, remote_filesystem

LOG = logging.getLogger(__name__)

LOCKFILE_NAME = "lockfile"
WORKLIST_SUFFIX = ".wl"  # case-sensitive, as wlmscpfs
MAX_FILE_SIZE = 64 * 1024 * 1024  # no worklist entry is this big; protects memory
#: A query that waited this long (seconds) for a writer's lock is logged as a warning.
SLOW_LOCK_WAIT = 1.0

#: Called AE titles that may name a storage area: 1-16 of letters, digits,
#: space and ``- : @ _`` — never '.', '/' or anything that could leave the data path.
_AREA_NAME = re.compile(r"[A-Za-z0-9 :@_-]{1,16}")


def is_valid_area_name(called_ae_title: str) -> bool:
    """True if the called AE title can name a storage area (no path tricks)."""
    name = called_ae_title.strip(" ")
    return bool(name) and _AREA_NAME.fullmatch(called_ae_title.rstrip(" ")) is not None


class AreaUnavailable(Exception):
    """The storage area cannot be used right now; the text is for operators.

    A query then fails (0xA700) rather than answering "nothing scheduled":
    an empty worklist on the modality would hide the problem.
    ``comment`` is the short text sent to the modality as Error Comment (LO, 64 chars).
    """

    def __init__(self, message: str, comment: str = "Worklist storage area cannot be read") -> None:
        super().__init__(message)
        self.comment = comment


class LockError(AreaUnavailable):
    """The storage area's lockfile could not be read-locked."""

    def __init__(
        self, message: str, comment: str = "Worklist storage area cannot be locked"
    ) -> None:
        super().__init__(message, comment)


def lock_holder(fd: int) -> str:
    """Who holds the write lock on ``fd``'s file, for the log: "by pid 42 (ris-export ...)".

    F_GETLK reports one process holding a conflicting lock; its command line
    tells the operator which writer to look at. The pid is that of the lock's
    owner as seen in our pid namespace (0 when it is in another namespace or
    on another NFS client).
    """
    probe = struct.pack("hhqqi4x", fcntl.F_RDLCK, os.SEEK_SET, 0, 0, 0)
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


@dataclass(frozen=True, slots=True)
class _Signature:
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Signature:
        return cls(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(slots=True)
class _Cached:
    signature: _Signature
    entry: WorklistEntry | None
    problem: str | None
    symlink: bool = False


class LockBusy(AreaUnavailable):
    """A non-blocking read lock found a writer (only the supervisor's refresh uses this)."""


class StorageArea:
    """One storage area: a directory named after a called AE title.

    The area keeps its parsed entries (an indexed snapshot) between queries.
    :meth:`refresh`, called under the read lock, brings them up to date: with
    a :class:`~wlmd.worklist.watch.Watch` only the files inotify named are
    looked at again; without one (``--no-index``, a network file system, no
    inotify) every file is stat()ed, as before, and only changed ones are
    parsed again. Either way a query sees exactly the files present when it
    took the lock.
    """

    def __init__(
        self,
        path: str,
        file_reject: bool,
        lock_timeout: float | None = None,
        watch: Callable[[], Watch | None] = lambda: None,
        use_index: bool = False,
    ) -> None:
        self.path = path
        self.lockfile = os.path.join(path, LOCKFILE_NAME)
        self.file_reject = file_reject
        self.lock_timeout = lock_timeout
        self.use_index = use_index
        self.index = AreaIndex()
        self._watch = watch
        self._cache: dict[str, _Cached] = {}
        self._symlinks: set[str] = set()  # re-checked every time: their targets send no events
        self._scanned = False
        self._watch_problem_logged = False
        self._real_path = os.path.realpath(path)
        self.remote = remote_filesystem(path) if use_index else None
        if self.remote:
            LOG.info(
                "storage area %s is on %s: every query checks every file (inotify does "
                "not see changes made by other hosts)",
                path,
                self.remote,
            )

    @contextmanager
    def read_locked(self, blocking: bool = True) -> Iterator[None]:
        """Hold a shared fcntl lock on the lockfile (blocks while a writer holds it).

        ``blocking=False`` raises :class:`LockBusy` at once if a writer holds it.
        """
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
            if blocking:
                self._lock_shared(fd)
            else:
                try:
                    fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError as exc:
                    if exc.errno in (errno.EACCES, errno.EAGAIN):
                        raise LockBusy(self.lockfile) from None
                    raise LockError(f"cannot read-lock {self.lockfile}: {exc.strerror}") from exc
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _lock_shared(self, fd: int) -> None:
        """Take the read lock, waiting for a writer (up to --lock-timeout, or forever).

        A wait of :data:`SLOW_LOCK_WAIT` or more is logged as a warning with the
        writer that caused it, looked up while it still holds the lock: a
        modality waiting seconds for its worklist is what an operator is
        called about, and the cause is a RIS export, not wlmd.
        """
        started = time.monotonic()
        if self._try_lock_shared(fd):
            return
        holder = lock_holder(fd)
        if self.lock_timeout is None:
            try:
                fcntl.lockf(fd, fcntl.LOCK_SH)
            except OSError as exc:
                raise LockError(f"cannot read-lock {self.lockfile}: {exc.strerror}") from exc
        else:
            deadline = started + self.lock_timeout
            delay = 0.001
            while not self._try_lock_shared(fd):
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"{self.lockfile} is write-locked {lock_holder(fd)} for more than "
                        f"{self.lock_timeout:g} s (--lock-timeout)",
                        "Worklist storage area is locked by a writer",
                    )
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        waited = time.monotonic() - started
        if waited >= SLOW_LOCK_WAIT:
            LOG.warning(
                "waited %.1f s for the read lock on %s: it was write-locked %s",
                waited,
                self.lockfile,
                holder,
            )

    def _try_lock_shared(self, fd: int) -> bool:
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise LockError(f"cannot read-lock {self.lockfile}: {exc.strerror}") from exc
            return False
        return True

    # --- keeping the snapshot current (call under the read lock) ------------------------
    def refresh(self, on_file: Callable[[], None] | None = None) -> None:
        """Bring the entries up to date with the directory. Call under the read lock.

        ``on_file`` is called after each file a full scan looked at (start-up
        progress, see :meth:`WorklistStore.load_all`).
        """
        watch = self._watch() if self.use_index and not self.remote else None
        if watch is not None and self._scanned:
            changes = watch.take_changes(self.path)
            if not changes.everything:
                for name in changes.names | self._symlinks:
                    if name.endswith(WORKLIST_SUFFIX):
                        self._reload(name)
                return
        if watch is not None and not watch.watches(self.path):
            # Watch first, then scan: a change during the scan is seen next time.
            try:
                watch.add(self.path)
            except OSError as exc:
                if not self._watch_problem_logged:
                    self._watch_problem_logged = True
                    limits = exc.errno in (errno.ENOSPC, errno.EMFILE)
                    LOG.warning(
                        "cannot watch %s (%s): every query will check every file%s",
                        self.path,
                        exc.strerror,
                        "; raise fs.inotify.max_user_watches/max_user_instances" if limits else "",
                    )
            else:
                watch.take_changes(self.path)  # the scan below covers them
        self._full_scan(on_file)
        self._scanned = watch is not None and watch.watches(self.path)

    def _full_scan(self, on_file: Callable[[], None] | None = None) -> None:
        names = set(self._worklist_names())
        for gone in [name for name in self._cache if name not in names]:
            self._forget(gone)
        for name in sorted(names):
            self._reload(name)
            if on_file is not None:
                on_file()

    def count_files(self) -> int:
        """How many worklist files the area holds now (0 if it cannot be read)."""
        try:
            return len(self._worklist_names())
        except AreaUnavailable:
            return 0

    def entries(self) -> list[WorklistEntry]:
        """Usable entries of the area, ordered by file name. Call under the read lock."""
        self.refresh()
        return self.index.ordered()

    def candidates(self, probes: Iterable[Probe]) -> list[WorklistEntry]:
        """Entries that may match ``probes``, by file name (all without the index).

        Call under the read lock, after :meth:`refresh`.
        """
        if self.use_index:
            narrowed = self.index.candidates(probes)
            if narrowed is not None:
                return narrowed
        return self.index.ordered()

    def _worklist_names(self) -> list[str]:
        try:
            with os.scandir(self.path) as it:
                names = [e.name for e in it if e.name.endswith(WORKLIST_SUFFIX)]
        except OSError as exc:
            raise AreaUnavailable(f"cannot read storage area {self.path}: {exc.strerror}") from exc
        return sorted(names)

    def _forget(self, name: str) -> None:
        cached = self._cache.pop(name, None)
        self._symlinks.discard(name)
        if cached is not None and cached.entry is not None:
            self.index.remove(cached.entry)

    def _reload(self, name: str) -> None:
        """Look at one file again: gone, unchanged, or parse it (again)."""
        path = os.path.join(self.path, name)
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # a dangling symlink or a vanished file is no news
                LOG.warning("worklist file %s skipped: %s", path, exc.strerror)
            self._forget(name)
            return
        signature = _Signature.of(st)
        cached = self._cache.get(name)
        if cached is not None and cached.signature == signature:
            return
        fresh = self._load(name, path, st, signature)
        self._forget(name)
        self._cache[name] = fresh
        if fresh.symlink:
            self._symlinks.add(name)
        if fresh.entry is not None:
            self.index.add(fresh.entry)

    def _load(self, name: str, path: str, st: os.stat_result, signature: _Signature) -> _Cached:
        entry: WorklistEntry | None = None
        symlink = os.path.islink(path)
        problem = self._unusable(path, st, symlink)
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
        return _Cached(signature, entry, problem, symlink)

    def _unusable(self, path: str, st: os.stat_result, symlink: bool) -> str | None:
        if not stat.S_ISREG(st.st_mode):
            return "not a regular file"
        if st.st_size > MAX_FILE_SIZE:
            return f"larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB"
        if symlink:
            target = os.path.realpath(path)
            if os.path.commonpath([target, self._real_path]) != self._real_path:
                return f"symbolic link to {target}, outside the storage area"
        return None


class WorklistStore:
    """All storage areas below ``--data-files-path``, and the process's inotify watch.

    With ``use_index`` the supervisor loads every area at start-up
    (:meth:`load_all`), keeps the snapshot current from its own watch
    (:meth:`refresh_changed`, from its event loop) and hands each worker a
    watch of its own, created before the fork (:meth:`watch_for_child`), so
    a worker starts with the supervisor's parsed, indexed entries (shared
    copy-on-write) and learns of every change made after them.
    """

    def __init__(
        self,
        data_files_path: str,
        file_reject: bool = True,
        lock_timeout: float | None = None,
        use_index: bool = False,
    ) -> None:
        self.root = data_files_path
        self.file_reject = file_reject
        self.lock_timeout = lock_timeout
        self.use_index = use_index
        self._areas: dict[str, StorageArea] = {}
        self.watch: Watch | None = None
        if use_index:
            self.watch = self._new_watch()

    def _new_watch(self) -> Watch | None:
        try:
            watch = Watch()
            watch.add(self.root)
        except OSError as exc:
            LOG.warning("inotify unavailable (%s): every query will check every file", exc.strerror)
            return None
        return watch

    def _current_watch(self) -> Watch | None:
        return self.watch

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
            area = StorageArea(
                path,
                self.file_reject,
                self.lock_timeout,
                watch=self._current_watch,
                use_index=self.use_index,
            )
            self._areas[name] = area
        return area

    # --- the supervisor's side ----------------------------------------------------------
    def load_all(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Load every storage area now (start-up); returns the number of usable entries.

        ``progress(done, total)`` is called with file counts once before the
        first file and after every file: at 100,000 files loading takes tens
        of seconds, and the caller (the supervisor) tells the service manager
        it is still making progress. The files are counted first, so
        ``total`` is known from the start (``done`` may pass it if files
        appear meanwhile).
        """
        try:
            names = sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        except OSError as exc:
            LOG.error("cannot read data files path %s: %s", self.root, exc.strerror)
            return 0
        areas = [area for area in map(self.area, names) if area is not None]
        files = sum(area.count_files() for area in areas)
        done = 0

        def one_file() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(done, files)

        if progress is not None:
            progress(0, files)
        entries = 0
        for area in areas:
            try:
                with area.read_locked():
                    area.refresh(one_file)
            except AreaUnavailable as exc:
                LOG.warning("storage area %s not loaded: %s", area.path, exc)
                continue
            entries += len(area.index)
        return entries

    def refresh_changed(self) -> bool:
        """Apply pending changes where no writer holds the lock; True if some remain.

        Never blocks: an area whose lockfile is write-locked is retried later
        (a query never depends on this; it refreshes under its own lock).
        """
        if self.watch is None:
            return False
        self.watch.drain()
        remaining = False
        for directory in self.watch.peek_directories():
            if directory == self.root:
                # Areas created, removed or renamed: forget the root's events and
                # (re)load areas by name; removed ones vanish in area().
                self.watch.take_changes(self.root)
                for name in list(self._areas):
                    self.area(name)
                self.load_new_areas()
                continue
            area = next((a for a in self._areas.values() if a.path == directory), None)
            if area is None:
                self.watch.take_changes(directory)
                continue
            try:
                with area.read_locked(blocking=False):
                    area.refresh()
            except LockBusy:
                remaining = True
            except AreaUnavailable as exc:
                LOG.warning("storage area %s not refreshed: %s", area.path, exc)
                self.watch.take_changes(directory)
        return remaining

    def load_new_areas(self) -> None:
        try:
            names = [e.name for e in os.scandir(self.root) if e.is_dir()]
        except OSError:
            return
        for name in names:
            if name not in self._areas and is_valid_area_name(name):
                area = self.area(name)
                if area is not None:
                    try:
                        with area.read_locked(blocking=False):
                            area.refresh()
                    except AreaUnavailable:  # LockBusy included
                        pass  # loaded by the first query instead

    def watch_for_child(self) -> Watch | None:
        """A new watch for a worker about to be forked, covering everything ours does.

        Created *before* our own queue is drained, so any change is either
        already in our pending set (which the child inherits) or in the new
        watch's queue: nothing falls between the two.
        """
        if self.watch is None:
            return None
        try:
            child = Watch()
            child.add(self.root)
            for area in self._areas.values():
                if self.watch.watches(area.path):
                    child.add(area.path)
        except OSError as exc:
            LOG.warning("cannot watch for a worker (%s); it will scan instead", exc.strerror)
            return None
        self.watch.drain()
        child.inherit_pending(self.watch)
        return child

    def adopt_watch(self, watch: Watch | None) -> None:
        """In the child: use ``watch`` from now on (None: scan every area again)."""
        old = self.watch
        self.watch = watch
        if old is not None:
            old.close()
        if watch is None:
            for area in self._areas.values():
                area._scanned = False
