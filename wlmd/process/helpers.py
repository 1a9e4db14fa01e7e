"""Helper children: long-running processes a service needs beside the workers.

The UPS event sender is one: it delivers N-EVENT-REPORTs from the state
store's outbox on associations of its own, so that a subscriber that is down
or slow never holds a worker. The supervisor owns such processes as it owns
workers: it forks them after the data is loaded, restarts one that dies
(after 1 s, doubling up to a minute, so a helper that cannot start does not
spin), and stops them after the workers at shutdown (SIGTERM, then SIGKILL
after :data:`STOP_TIMEOUT`), so that what the last associations wrote is still
sent. Services declare them through :meth:`wlmd.process.hooks.ServiceData.helpers`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

LOG = logging.getLogger("wlmd.supervisor")

#: How long a helper may take to finish after SIGTERM (an event sender sends the
#: SCP Status Change "going down" reports) before it is killed.
STOP_TIMEOUT = 10.0
RESTART_FIRST = 1.0
RESTART_MAX = 60.0


@dataclass(frozen=True)
class Helper:
    """A process to keep running: ``run()`` runs in the child; its result is the exit status."""

    name: str
    run: Callable[[], int]


@dataclass
class _Slot:
    helper: Helper
    pid: int | None = None
    restart_at: float | None = None
    delay: float = RESTART_FIRST
    started: float = 0.0
    #: how a helper that was stopped from outside ended, said when it is restarted
    #: (or as "stopped" if the supervisor is asked to stop first)
    ended: str = ""


class HelperProcesses:
    """The supervisor's helper children: start, restart with backoff, stop."""

    def __init__(self, helpers: Sequence[Helper], become_child: Callable[[str], None]) -> None:
        self._slots = [_Slot(h) for h in helpers]
        self._become_child = become_child
        self._stopping = False
        #: one-shot jobs running (pid -> name): forked like helpers, never restarted
        self._jobs: dict[int, str] = {}

    def __len__(self) -> int:
        return sum(1 for slot in self._slots if slot.pid is not None)

    def start_all(self) -> None:
        for slot in self._slots:
            if slot.pid is None:
                self._start(slot)

    def jobs_running(self) -> bool:
        return bool(self._jobs)

    def run_once(self, job: Helper) -> None:
        """Fork ``job`` now, as a helper that is not restarted (writing a cache file)."""
        pid = self._fork(job)
        if pid is not None:
            self._jobs[pid] = job.name

    def _fork(self, helper: Helper) -> int | None:
        try:
            pid = os.fork()
        except OSError as exc:
            LOG.error("cannot start %s: fork failed: %s", helper.name, exc)
            return None
        if pid == 0:  # pragma: no cover - the child never returns here
            status = 1
            try:
                self._become_child(helper.name)
                status = helper.run()
            except BaseException:
                LOG.exception("%s failed", helper.name)
            finally:
                logging.shutdown()
                os._exit(status)
        return pid

    def _start(self, slot: _Slot) -> None:
        slot.restart_at = None
        pid = self._fork(slot.helper)
        if pid is None:
            self._schedule(slot)
            return
        slot.pid = pid
        slot.started = time.monotonic()
        LOG.info("%s started (pid %d)", slot.helper.name, pid)

    def _schedule(self, slot: _Slot) -> None:
        slot.restart_at = time.monotonic() + slot.delay
        slot.delay = min(RESTART_MAX, slot.delay * 2)

    def reaped(self, pid: int, status: int) -> bool:
        """Whether ``pid`` was a helper; if it died unasked, its restart is scheduled."""
        job = self._jobs.pop(pid, None)
        if job is not None:
            if status:
                LOG.warning("%s (pid %d) %s", job, pid, _describe(status))
            return True
        for slot in self._slots:
            if slot.pid != pid:
                continue
            slot.pid = None
            if self._stopping:
                LOG.info("%s stopped (%s)", slot.helper.name, _describe(status))
                return True
            if time.monotonic() - slot.started > RESTART_MAX:
                slot.delay = RESTART_FIRST  # it ran a good while: not a start-up failure
            self._schedule(slot)
            if _stopped_from_outside(status):
                # A Ctrl-C or `kill -TERM -PGID` reaches the helper before the
                # supervisor may have seen its own signal: say it at the restart,
                # or as "stopped" if the supervisor stops first.
                slot.ended = f"(pid {pid}) {_describe(status)}"
                return True
            LOG.warning(
                "%s (pid %d) %s; restarting in %g s",
                slot.helper.name,
                pid,
                _describe(status),
                slot.restart_at - time.monotonic() if slot.restart_at else 0.0,
            )
            return True
        return False

    def wait_time(self, wait: float) -> float:
        """``wait`` shortened to the next scheduled restart."""
        for slot in self._slots:
            if slot.restart_at is not None:
                wait = max(0.0, min(wait, slot.restart_at - time.monotonic()))
        return wait

    def start_due(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            if slot.pid is None and slot.restart_at is not None and now >= slot.restart_at:
                if slot.ended:
                    LOG.warning("%s %s; restarting", slot.helper.name, slot.ended)
                    slot.ended = ""
                self._start(slot)

    def begin_stop(self) -> None:
        """From now on a helper that ends is stopped, not restarted.

        Called as soon as the supervisor is asked to stop: a Ctrl-C or a
        ``kill -TERM -PGID`` reaches the helpers at the same moment as the
        supervisor, and one that ends while the workers are still being stopped
        is part of the shutdown ("stopped"), not a crash to restart.
        """
        self._stopping = True
        for slot in self._slots:
            slot.restart_at = None
            if slot.ended:
                LOG.info("%s stopped %s", slot.helper.name, slot.ended)
                slot.ended = ""

    def stop(self, reap: Callable[[], None], timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM every helper, reap them (``reap`` calls :meth:`reaped`), SIGKILL stragglers."""
        self.begin_stop()
        for slot in self._slots:
            if slot.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while (len(self) or self._jobs) and time.monotonic() < deadline:
            reap()  # one-shot jobs are not signalled: they end soon by themselves
            if len(self) or self._jobs:
                time.sleep(0.02)  # bounded by the deadline; children signal nothing else
        for pid, name in self._jobs.items():
            LOG.warning("%s did not finish within %g s: killed", name, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self._jobs.clear()
        for slot in self._slots:
            if slot.pid is not None:
                LOG.warning("%s did not stop within %g s: killed", slot.helper.name, timeout)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(slot.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(slot.pid, 0)
                slot.pid = None


def _stopped_from_outside(status: int) -> bool:
    """Exit status 0 (a helper's orderly end on SIGTERM) or killed by SIGTERM/SIGINT."""
    if os.WIFSIGNALED(status):
        return os.WTERMSIG(status) in (signal.SIGTERM, signal.SIGINT)
    return os.WEXITSTATUS(status) == 0


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"
