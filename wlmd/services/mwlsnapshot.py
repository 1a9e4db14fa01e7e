"""The MWL storage areas as the supervisor keeps them warm: its whole view of MWL data.

The supervisor knows a service's data only through these few hooks: what
to preload before forking (:meth:`WorklistSnapshot.preload`), which
descriptors to keep across daemonising and to watch in its select loop
(:meth:`~WorklistSnapshot.descriptors`), what to refresh when they are
readable (:meth:`~WorklistSnapshot.refresh`), and what each child needs
across ``fork()`` (:meth:`~WorklistSnapshot.before_fork`, ``in_parent``,
``in_child``). The data itself (:attr:`~WorklistSnapshot.store`) is passed
to the workers unopened. A UPS state store would be a second object of
this shape.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Sequence

from wlmd.settings.config import Config
from wlmd.worklist.store import WorklistStore
from wlmd.worklist.watch import Watch

#: the supervisor's logger: these are its lines
LOG = logging.getLogger("wlmd.supervisor")

#: A refresh that found an area write-locked is tried again this much later (seconds).
REFRESH_RETRY = 0.1
#: The snapshot cache file is rewritten at most this often while files change (seconds).
CACHE_WRITE_INTERVAL = 60.0
CACHE_WRITER = "worklist snapshot cache writer"


def snapshot_cache_path(config: Config) -> str | None:
    """``--snapshot-cache`` ("none": no cache), else ``$STATE_DIRECTORY/worklist.snapshot``
    (systemd's StateDirectory=), else no cache (the command line owes nobody a file)."""
    if config.snapshot_cache is not None:
        return None if config.snapshot_cache in ("", "none") else config.snapshot_cache
    directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return os.path.join(directory, "worklist.snapshot") if directory else None


class WorklistSnapshot:
    """Every storage area of --data-files-path, loaded once and kept current (--index)."""

    def __init__(self, config: Config) -> None:
        self.index = config.index
        self.store = WorklistStore(
            config.data_files_path,
            config.enable_file_reject,
            lock_timeout=config.lock_timeout,
            use_index=config.index,
            snapshot_cache=snapshot_cache_path(config),
        )
        self._retry_at: float | None = None
        self._cache_written_at: float | None = None

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Parse and index every storage area once, so that workers start with it (--index).

        Before READY=1, so that the first association is served from memory.
        ``progress(done, total)`` is called as files are read (under systemd the
        supervisor passes one that reports ``EXTEND_TIMEOUT_USEC`` and STATUS).
        """
        if not self.index:
            return
        started = time.monotonic()
        count = self.store.load_all(progress=progress)
        LOG.info(
            "snapshot loaded: %d worklist entries in %.2f s%s",
            count,
            time.monotonic() - started,
            "" if self.store.watch is not None else " (no inotify: queries scan instead)",
        )
        gc.freeze()  # loaded objects stay out of the collector's way, in us and in workers

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        """MWL needs no process beside the workers."""
        return []

    def descriptors(self) -> list[int]:
        """The inotify watch, if any: kept when daemonising, watched by the select loop."""
        watch = self.store.watch
        return [] if watch is None else [watch.fileno()]

    def wait_time(self, wait: float) -> float:
        """``wait`` shortened to the next retry of a refresh a writer's lock delayed."""
        if self._retry_at is not None:
            wait = max(0.0, min(wait, self._retry_at - time.monotonic()))
        if self._cache_written_at is not None and self.store.cache_outdated():
            due = self._cache_written_at + CACHE_WRITE_INTERVAL
            wait = max(0.0, min(wait, due - time.monotonic()))
        return wait

    def refresh_due(self, ready: Sequence[object]) -> bool:
        """The watch is among ``ready`` (select's answer), or a delayed refresh is due."""
        watch = self.store.watch
        if watch is not None and watch.fileno() in ready:
            return True
        return self._retry_at is not None and time.monotonic() >= self._retry_at

    def refresh(self) -> bool:
        """Keep our snapshot current, so new workers start with little to re-read;
        True if it changed.

        A writer holding the lock only delays this (retried shortly); queries
        never depend on it, they refresh under their own read lock. Most wake-ups
        change nothing: the lockfile protocol's temporary file (created, written,
        renamed) and a refresh that found the area locked each wake the select
        loop before the one that applies the ``.wl`` file.
        """
        before = self.store.generation()
        busy = self.store.refresh_changed()
        self._retry_at = time.monotonic() + REFRESH_RETRY if busy else None
        gc.freeze()
        return self.store.generation() != before

    def background_job(self) -> tuple[str, Callable[[], int]] | None:
        """Write the snapshot cache when it no longer describes the snapshot: right after
        start-up, then at most every CACHE_WRITE_INTERVAL while files change.

        In a child of the supervisor: the file is ~500 bytes per entry, and
        serialising and fsync()ing 50 MB must not hold the accept loop.
        """
        if not self.store.cache_outdated():
            return None
        now = time.monotonic()
        if (
            self._cache_written_at is not None
            and now < self._cache_written_at + CACHE_WRITE_INTERVAL
        ):
            return None
        self._cache_written_at = now
        # Taken as written: if the writer fails, the next change tries again.
        self.store.saved_generation = self.store.generation()
        return CACHE_WRITER, self._write_cache

    def _write_cache(self) -> int:
        """In the writer child: the file, one log line, exit status 0 on success."""
        started = time.monotonic()
        try:
            size = self.store.save_cache()
        except OSError as exc:
            LOG.error(
                "snapshot cache %s not written: %s", self.store.snapshot_cache, exc.strerror or exc
            )
            return 1
        LOG.info(
            "snapshot cache %s written: %.1f MB in %.2f s",
            self.store.snapshot_cache,
            size / 1e6,
            time.monotonic() - started,
        )
        return 0

    def before_fork(self) -> Watch | None:
        """What the next child needs: a watch of its own (see ``WorklistStore.watch_for_child``)."""
        return self.store.watch_for_child()

    def in_parent(self, for_child: Watch | None) -> None:
        """After fork() (or a failed one), in the supervisor: its copy is not ours."""
        if for_child is not None:
            for_child.close()

    def in_child(self, for_child: Watch | None) -> None:
        """After fork(), in the child: use its own watch from now on."""
        self.store.adopt_watch(for_child)
