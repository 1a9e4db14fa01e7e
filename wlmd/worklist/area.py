"""One storage area and its parse cache: the entries of ``<data-files-path>/<AE>/*.wl``.

Parsed files are cached by (inode, size, mtime, ctime): only new or changed
files are parsed again, and a bad file is logged once per change rather than
once per query. The entries are kept indexed (:class:`AreaIndex`) between
queries; reading them is done under the area's read lock
(:mod:`wlmd.worklist.lockfile`), so a query never sees a half-written state.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import struct
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from wlmd.worklist import lockfile, packed
from wlmd.worklist.entry import WorklistEntry, WorklistFileError, incompleteness, load_entry
from wlmd.worklist.index import AreaIndex
from wlmd.worklist.layout import LOCKFILE_NAME, MAX_FILE_SIZE, WORKLIST_SUFFIX, AreaUnavailable
from wlmd.worklist.match import Probe
from wlmd.worklist.packed import ShapeKey
from wlmd.worklist.snapshotfile import AreaState
from wlmd.worklist.watch import Watch, remote_filesystem

#: the storage areas' logger, as before the parse cache had a module of its own
LOG = logging.getLogger("wlmd.worklist.store")


#: What says a file is unchanged, the running process and a restart trusting the same:
#: inode, size, mtime and ctime (ns), packed (65 bytes a file instead of ~220 as a tuple
#: of four large ints, at 100,000 files 15 MB).
_SIGNATURE = struct.Struct("<Qqqq")


def _signature(st: os.stat_result) -> bytes:
    return _SIGNATURE.pack(st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(slots=True)
class _Cached:
    signature: bytes
    entry: WorklistEntry | None
    problem: str | None
    symlink: bool = False
    #: restored from the snapshot cache with a problem: logged again once the file is
    #: confirmed unchanged (each start logs each unusable file once)
    relog: bool = False


#: A snapshot record whose file changed this little before the scan that stat()ed it
#: is parsed again: the kernel stamps ctime from a clock that advances in ticks (and
#: some file systems in seconds), so a change right after our stat() could carry
#: the same ctime. As git's "racy" index entries.
RACY_MARGIN_NS = 3_000_000_000


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
        #: wall clock (ns) at the start of the last full scan: every cached signature
        #: was taken after it (see RACY_MARGIN_NS)
        self._scan_started_ns: int | None = None
        #: counts changes to the cached state (the snapshot cache is written when it moved)
        self.generation = 0
        #: files parsed (with pydicom) by this process
        self.parsed = 0
        self._real_path = os.path.realpath(path)
        self.remote = remote_filesystem(path) if use_index else None
        if self.remote:
            LOG.info(
                "storage area %s is on %s: every query checks every file (inotify does "
                "not see changes made by other hosts)",
                path,
                self.remote,
            )

    def read_locked(self, blocking: bool = True) -> AbstractContextManager[None]:
        """Hold a shared fcntl lock on the area's lockfile (:func:`lockfile.read_locked`).

        ``blocking=False`` raises :class:`~wlmd.worklist.lockfile.LockBusy` at
        once if a writer holds it; else a writer is waited for, up to
        --lock-timeout.
        """
        return lockfile.read_locked(self.lockfile, self.lock_timeout, blocking)

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
        started = time.time_ns()
        names = self._worklist_names()
        present = set(names)
        for gone in [name for name in self._cache if name not in present]:
            self._forget(gone)
        prefix = os.path.join(self.path, "")
        cache = self._cache
        for name in names:  # sorted
            path = prefix + name
            # The common case inline (100,000 unchanged files after a restart):
            # stat, compare; anything else goes through _reload, which stats again.
            cached = cache.get(name)
            try:
                st = os.stat(path)
            except OSError:
                st = None
            if st is None or cached is None or cached.relog or cached.signature != _signature(st):
                self._reload(name, path)
            if on_file is not None:
                on_file()
        self._scan_started_ns = started

    def rescan(self) -> None:
        """The next :meth:`refresh` looks at every file (the process's watch went away)."""
        self._scanned = False

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

    # --- the snapshot cache (wlmd.worklist.snapshotfile) --------------------------------
    def export(self) -> AreaState | None:
        """The cached files, entries and index as plain values; None before a full scan.

        Only consistent between refreshes (the supervisor's child that writes
        the cache has a copy of memory taken between two).
        """
        if self._scan_started_ns is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        shapes: dict[int, int] = {}  # id(root layout) -> its number in `keys`
        keys: list[tuple[int, ShapeKey]] = []
        files = []
        for name, c in self._cache.items():
            parsed = None
            if c.entry is not None:
                layout, blob = c.entry.packed
                number = shapes.get(id(layout))
                if number is None:
                    number = shapes[id(layout)] = len(keys)
                    keys.append((layout.width, layout.key))
                parsed = (number, blob, c.entry.charset, c.entry.pregnancy_status)
            files.append((name, *_SIGNATURE.unpack(c.signature), c.symlink, c.problem, parsed))
        return (
            os.path.basename(self.path),
            st.st_dev,
            st.st_ino,
            self._scan_started_ns,
            keys,
            files,
            self.index.export(),
        )

    def restore(self, state: AreaState) -> None:
        """Take ``state`` (:meth:`export` of an earlier process) as the cache, before the
        first :meth:`refresh`, which then checks every file against it.

        Records of files changed within RACY_MARGIN_NS of the scan that saw them
        are kept only to be parsed again. Raises ValueError (with the reason)
        when ``state`` is not this area's or is malformed; the area is unchanged then.
        """
        try:
            name, dev, ino, scan_started_ns, shape_keys, files, index_state = state
            st = os.stat(self.path)
        except (ValueError, TypeError) as exc:
            raise ValueError("malformed area record") from exc
        except OSError as exc:
            raise ValueError(f"cannot stat the area: {exc.strerror}") from exc
        if name != os.path.basename(self.path):
            raise ValueError(f"record of another area ({name!r})")
        if (dev, ino) != (st.st_dev, st.st_ino):
            raise ValueError("the area directory was replaced (another device or inode)")
        trusted_before = int(scan_started_ns) - RACY_MARGIN_NS
        cache: dict[str, _Cached] = {}
        symlinks: set[str] = set()
        entries: dict[str, WorklistEntry] = {}
        try:
            layouts = [packed.shape(width, key) for width, key in shape_keys]
            for fname, inode, size, mtime_ns, ctime_ns, symlink, problem, parsed in files:
                if ctime_ns >= trusted_before:
                    ctime_ns = -1  # never equal to a real one: parsed again
                entry = None
                if parsed is not None:
                    number, blob, charset, pregnancy_status = parsed
                    layout = layouts[number]
                    packed.check(layout, blob)
                    entry = WorklistEntry.from_packed(
                        fname, layout, blob, charset, pregnancy_status
                    )
                    entries[fname] = entry
                cache[fname] = _Cached(
                    _SIGNATURE.pack(inode, size, mtime_ns, ctime_ns),
                    entry,
                    problem,
                    symlink,
                    relog=problem is not None,
                )
                if symlink:
                    symlinks.add(fname)
            index = AreaIndex.restore(index_state, entries)
        except (ValueError, TypeError, KeyError, IndexError, struct.error) as exc:
            raise ValueError(f"malformed file records ({type(exc).__name__}: {exc})") from exc
        self._cache = cache
        self._symlinks = symlinks
        self.index = index

    def cached_files(self) -> int:
        """How many files the cache describes (usable or not)."""
        return len(self._cache)

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
        if cached is not None:
            self.generation += 1
            if cached.entry is not None:
                self.index.remove(cached.entry)

    def _reload(self, name: str, path: str | None = None) -> None:
        """Look at one file again: gone, unchanged, or parse it (again)."""
        path = path or os.path.join(self.path, name)
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # a dangling symlink or a vanished file is no news
                LOG.warning("worklist file %s skipped: %s", path, exc.strerror)
            self._forget(name)
            return
        signature = _signature(st)
        cached = self._cache.get(name)
        if cached is not None and cached.signature == signature:
            if cached.relog:
                cached.relog = False
                LOG.warning("worklist file %s skipped: %s", path, cached.problem)
            return
        fresh = self._load(name, path, st, signature)
        self._forget(name)
        self._cache[name] = fresh
        self.generation += 1
        if fresh.symlink:
            self._symlinks.add(name)
        if fresh.entry is not None:
            self.index.add(fresh.entry)

    def _load(self, name: str, path: str, st: os.stat_result, signature: bytes) -> _Cached:
        symlink = os.path.islink(path)
        self.parsed += 1  # looked at again (pydicom unless plainly unusable)
        entry, problem = examine(path, name, st, self._real_path, self.file_reject)
        if problem:
            LOG.warning("worklist file %s skipped: %s", path, problem)
        return _Cached(signature, entry, problem, symlink)


def examine(
    path: str, name: str, st: os.stat_result, area_real_path: str, file_reject: bool = True
) -> tuple[WorklistEntry | None, str | None]:
    """The server's verdict on one file: its entry, or None and why it is skipped.

    This is the whole decision a query makes about a ``.wl`` file (not a
    regular file, too large, a symbolic link out of the area, unreadable or
    corrupt DICOM, incomplete per PS3.4 Table K.6-1 with ``file_reject``), in
    one function so that writers (:mod:`wlmd.authoring`) can ask the same
    question about a file before renaming it into place and never disagree
    with the server. ``st`` is the ``os.stat`` of ``path`` (links followed).
    """
    problem = _unusable(path, st, area_real_path)
    if problem is not None:
        return None, problem
    try:
        entry = load_entry(path, name)
    except WorklistFileError as exc:
        return None, str(exc)
    if file_reject:
        missing = incompleteness(entry)
        if missing:
            return None, f"incomplete worklist file rejected: {missing}"
    return entry, None


def _unusable(path: str, st: os.stat_result, area_real_path: str) -> str | None:
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > MAX_FILE_SIZE:
        return f"larger than {MAX_FILE_SIZE // (1024 * 1024)} MiB"
    if os.path.islink(path):
        target = os.path.realpath(path)
        if os.path.commonpath([target, area_real_path]) != area_real_path:
            return f"symbolic link to {target}, outside the storage area"
    return None
