"""All storage areas of ``--data-files-path``, and their snapshot's life across fork().

wlmscpfs's layout (:mod:`wlmd.worklist.layout`): one directory per called
AE title. With ``--index`` the supervisor loads every area once before
forking and keeps it current from an inotify watch; each worker starts
with those parsed, indexed entries and a watch of its own. One area's
files and cache are :class:`~wlmd.worklist.area.StorageArea`; its lock
protocol is :mod:`wlmd.worklist.lockfile`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

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
                area.rescan()
