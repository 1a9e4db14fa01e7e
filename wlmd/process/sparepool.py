"""The supervisor's pool of spare workers (--spare-workers): which are idle, which serve.

The spare workers themselves (their channel and their loop) are
:mod:`wlmd.process.spare`; the supervisor forks them (it alone forks) and asks this
pool which one takes the next connection, which come back after their
association, and which are sent away: one forked before the last snapshot
refresh (an older generation) or one too many is retired (EOF) and exits.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from wlmd.process.spare import Spare

#: the supervisor's logger: these are its lines
LOG = logging.getLogger("wlmd.supervisor")

#: After a spare worker died without serving, wait this long before forking the next.
SPARE_RETRY = 1.0


class SparePool:
    """Idle spares (oldest first) and busy ones (by pid); ``wanted`` is --spare-workers.

    ``wanted`` is 0 outside fork mode: then no spare is ever missing.
    """

    def __init__(self, wanted: int) -> None:
        self.wanted = wanted
        #: workers forked ahead for the next connections, oldest first
        self.idle: list[Spare] = []
        #: spare workers serving an association, by pid: they come back when done
        self.busy: dict[int, Spare] = {}
        #: the supervisor's snapshot generation: spares forked before a refresh are stale
        self.generation = 0
        self._retry_at = 0.0

    def missing(self) -> bool:
        """Fewer than --spare-workers idle or serving (those come back)."""
        return len(self.idle) + len(self.busy) < self.wanted

    def may_fork(self) -> bool:
        """A spare is missing and no failed one asks us to wait first."""
        return self.missing() and time.monotonic() >= self._retry_at

    def wait_time(self, wait: float) -> float:
        """``wait`` shortened to when the next spare may be forked, if one is missing."""
        if self.missing():
            wait = max(0.0, min(wait, self._retry_at - time.monotonic()))
        return wait

    def fork_failed(self) -> None:
        self._retry_at = time.monotonic() + SPARE_RETRY

    def forked(self, pid: int, channel: socket.socket) -> None:
        self.idle.append(Spare(pid, channel, self.generation))

    def hand_over(
        self, conn: socket.socket, peer: tuple[str, int], new_ident: Callable[[], str]
    ) -> tuple[int, str] | None:
        """Pass ``conn`` to the oldest idle spare: (its pid, the association tag), or None."""
        while self.idle:
            current = self.idle.pop(0)
            ident = new_ident()
            if current.hand_over(conn, peer, ident):
                self.busy[current.pid] = current
                return current.pid, ident
        return None

    def channels(self) -> list[socket.socket]:
        """The busy spares' channels: readable when one finished its association."""
        return [s.channel for s in self.busy.values()]

    def by_channel(self, sock: object) -> Spare | None:
        return next((s for s in self.busy.values() if s.channel is sock), None)

    def came_back(self, done: Spare) -> bool:
        """``done``'s channel was readable: True if it finished its association.

        False if it exited (or crashed) instead: the supervisor's reap reports it.
        """
        del self.busy[done.pid]
        if not done.finished():
            done.retire()
            return False
        return True

    def keep(self, done: Spare, reuse: bool) -> None:
        """Take back a spare that came back, if ``reuse`` and it is current and wanted."""
        if reuse and done.generation == self.generation and len(self.idle) < self.wanted:
            self.idle.insert(0, done)  # the most recently used is the warmest
        else:
            done.retire()

    def reaped(self, pid: int, status: int) -> bool:
        """``pid`` ended: True if it was an idle spare (no association to report)."""
        busy = self.busy.pop(pid, None)
        if busy is not None:
            busy.retire()
        ended = next((s for s in self.idle if s.pid == pid), None)
        if ended is None:
            return False
        ended.retire()
        self.idle.remove(ended)
        if os.WIFSIGNALED(status) or os.WEXITSTATUS(status):
            LOG.error("spare worker %d ended before serving (status 0x%04X)", pid, status)
            self._retry_at = time.monotonic() + SPARE_RETRY
        return True

    def new_generation(self, retire_idle: bool = True) -> None:
        """The snapshot was refreshed or logging reloaded: spares forked before are stale.

        After a logging reload idle spares retire at once (they would log the old
        way). After a snapshot refresh they stay and serve the next connections:
        each has its own inotify watch and re-reads, under the read lock, what
        changed since it was forked (answers are as current as a fresh worker's),
        and retires when its association ends. Retiring them at once made the
        first query after every change wait for a fresh fork (a new file took
        150 ms instead of 20 ms to become visible at 100,000 entries).
        """
        self.generation += 1
        if retire_idle:
            self.retire_idle()

    def retire_idle(self) -> None:
        for old in self.idle:
            old.retire()
        self.idle.clear()

    def stop(self) -> list[int]:
        """At shutdown: retire every spare; returns the idle ones' pids (to reap)."""
        idle = [old.pid for old in self.idle]  # each exits on EOF
        self.retire_idle()
        for busy in self.busy.values():
            busy.retire()  # it exits after its association (SIGTERM follows)
        self.busy.clear()
        return idle

    def close_in_child(self) -> None:
        """In a newly forked worker: our copies of the channels go, so retired spares see EOF."""
        for other in [*self.idle, *self.busy.values()]:
            other.channel.close()
        self.idle = []
        self.busy = {}
