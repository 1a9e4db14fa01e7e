"""All storage areas of ``--data-files-path``, and their snapshot's life across fork().

wlmscpfs's layout (:mod:`wlmd.worklist.layout`): one directory per called
AE title. With ``--index`` the supervisor loads every area once before
forking and keeps it current from an inotify watch; each worker starts
with those parsed, indexed entries and a watch of its own. One area's
files and cache are :class:`~wlmd.worklist.area.StorageArea`; its lock
protocol is :mod:`wlmd.worklist.lockfile`.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable

from wlmd.worklist import snapshotfile
from wlmd.worklist.area import StorageArea
from wlmd.worklist.layout import AreaUnavailable, is_valid_area_name
from wlmd.worklist.lockfile import LockBusy
from wlmd.worklist.watch import Watch

LOG = logging.getLogger(__name__)


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
        snapshot_cache: str | None = None,
    ) -> None:
        self.root = data_files_path
        self.file_reject = file_reject
        self.lock_timeout = lock_timeout
        self.use_index = use_index
        #: --snapshot-cache: where the parsed areas are kept across restarts (None: nowhere)
        self.snapshot_cache = snapshot_cache if use_index else None
        if self.snapshot_cache:
            snapshotfile.code_fingerprint()  # of the code running now (see there)
        self._areas: dict[str, StorageArea] = {}
        self._areas_changed = 0  # areas forgotten, and their generations
        #: generation() when the cache file last described our state (None: never)
        self.saved_generation: int | None = None
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
            gone = self._areas.pop(name, None)
            if gone is not None:
                # Its generation stays counted: generation() only ever grows, so a
                # vanished area never looks like "no change" (cache, spare workers).
                self._areas_changed += 1 + gone.generation
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
        restored = self._restore(areas) if self.snapshot_cache else False
        # From the cache, its count will do (saves listing 100,000 names twice).
        files = sum(area.cached_files() or area.count_files() for area in areas)
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
        if restored:
            LOG.info(
                "snapshot cache %s: %d of %d worklist files parsed again (new or changed)",
                self.snapshot_cache,
                sum(area.parsed for area in areas),
                files,
            )
        return entries

    # --- the snapshot cache (--snapshot-cache) ------------------------------------------
    def _restore(self, areas: list[StorageArea]) -> bool:
        """Take the cache file's state for ``areas`` (before their first scan); True if
        every area came from it. Whatever cannot be used is logged and parsed instead."""
        path = self.snapshot_cache
        assert path is not None
        snapshotfile.remove_stale_temporaries(path)
        started = time.monotonic()
        try:
            states = snapshotfile.read(path, self.identity())
        except FileNotFoundError:
            LOG.info("snapshot cache %s does not exist yet: parsing every worklist file", path)
            return False
        except snapshotfile.SnapshotUnusable as exc:
            LOG.warning("snapshot cache %s not used: %s; parsing every worklist file", path, exc)
            return False
        by_name = {state[0]: state for state in states if state}
        complete = len(by_name) == len(areas)
        with snapshotfile.collector_paused():
            for area in areas:
                name = os.path.basename(area.path)
                state = by_name.get(name)
                if state is None:
                    LOG.info("snapshot cache %s has no area %s: parsing it", path, name)
                    complete = False
                    continue
                try:
                    area.restore(state)
                except ValueError as exc:
                    LOG.warning(
                        "snapshot cache %s: area %s not used: %s; parsing it", path, name, exc
                    )
                    complete = False
            # Millions of objects the collector would otherwise traverse again and
            # again while the scan below allocates (seconds at 100,000 entries):
            # they hold no cycles, and the supervisor freezes them after loading anyway.
            gc.freeze()
        LOG.info(
            "snapshot cache %s read: %d worklist files in %.2f s",
            path,
            sum(area.cached_files() for area in areas),
            time.monotonic() - started,
        )
        if complete:
            self.saved_generation = self.generation()
        return True

    def identity(self) -> snapshotfile.Identity:
        """What a cache file must have been written for (see :mod:`snapshotfile`)."""
        return snapshotfile.Identity(self.root, self.file_reject)

    def generation(self) -> int:
        """Moves whenever any area's cached state changes (or an area goes)."""
        return self._areas_changed + sum(area.generation for area in self._areas.values())

    def cache_outdated(self) -> bool:
        """Whether the cache file no longer describes what we hold."""
        return self.snapshot_cache is not None and self.saved_generation != self.generation()

    def save_cache(self) -> int:
        """Write the cache file now (in a child of the supervisor: see module doc of
        :mod:`snapshotfile`); returns its size. Raises OSError."""
        assert self.snapshot_cache is not None
        states = [s for s in (a.export() for a in self._areas.values()) if s is not None]
        return snapshotfile.write(self.snapshot_cache, self.identity(), states)

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
                area.rescan()
