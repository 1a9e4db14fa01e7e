"""The supervisor's book of its workers: pid → association, reaping, exit lines, stopping.

Children are reaped with ``waitpid(-1, WNOHANG)`` (gunicorn's arbiter);
a worker that died of a signal or exited non-zero gets one error line tagged
with its association, so one grep finds everything about it. At shutdown
every worker has GRACEFUL_TIMEOUT to finish or abort its association
(:func:`wlmd.process.worker.request_stop`) and is killed KILL_MARGIN later.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from wlmd.process.logsetup import set_association_id
from wlmd.process.worker import GRACEFUL_TIMEOUT

#: the supervisor's logger: these are its lines
LOG = logging.getLogger("wlmd.supervisor")

#: After SIGTERM each worker aborts its association itself after GRACEFUL_TIMEOUT;
#: one that has not exited this much later is killed.
KILL_MARGIN = 5.0


@dataclass(frozen=True)
class WorkerInfo:
    """What the supervisor knows of a worker it forked: for its log lines and the limits.

    The calling and called AE titles are known only to the worker; the
    association tag leads to its lines that name them.
    """

    ident: str  # the association tag, "a1kq2x9.17"
    host: str  # the peer's address as counted by --max-associations-per-host
    peer: str  # "host:port" as logged
    started: float = field(default_factory=time.monotonic)


class Workers(dict[int, WorkerInfo]):
    """The workers serving an association, by pid: what --max-associations counts."""

    def from_host(self, host: str) -> int:
        """How many of them serve ``host`` (--max-associations-per-host)."""
        return sum(1 for w in self.values() if w.host == host)

    def ended(self, pid: int, status: int) -> None:
        """``pid`` was reaped with ``status``: forget it; an error line if it failed."""
        info = self.pop(pid, None)
        if os.WIFSIGNALED(status):
            _log_worker(
                info,
                "worker %d%s killed by signal %d (%s)",
                pid,
                _serving(info),
                os.WTERMSIG(status),
                _signal_name(os.WTERMSIG(status)),
            )
        elif os.WEXITSTATUS(status):
            _log_worker(
                info,
                "worker %d%s exited with status %d",
                pid,
                _serving(info),
                os.WEXITSTATUS(status),
            )

    def stop_all(self, reap: Callable[[], None]) -> None:
        """SIGTERM every worker, ``reap()`` them as they exit, SIGKILL the late ones.

        ``reap`` is the supervisor's, which also accounts for spare workers.
        """
        for pid in list(self):  # each finishes its association, or aborts it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + GRACEFUL_TIMEOUT + KILL_MARGIN
        while self and time.monotonic() < deadline:
            reap()
            if self:
                time.sleep(0.05)
        for pid, info in list(self.items()):
            _log_worker(
                info,
                "killing worker %d%s: still running %.0f s after SIGTERM",
                pid,
                _serving(info),
                GRACEFUL_TIMEOUT + KILL_MARGIN,
            )
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        while self:
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            self.pop(pid, None)


def reaped() -> Iterator[tuple[int, int]]:
    """(pid, status) of each child that has ended, without waiting for any."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, status


def _serving(info: WorkerInfo | None) -> str:
    return f" (serving {info.peer})" if info is not None else ""


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return "unknown signal"


def _log_worker(info: WorkerInfo | None, message: str, *args: object) -> None:
    """An error about a worker, tagged with its association so one grep finds it all."""
    set_association_id(info.ident if info is not None else None)
    try:
        LOG.error(message, *args)
    finally:
        set_association_id(None)


def die_with_parent(supervisor_pid: int) -> None:
    """PR_SET_PDEATHSIG: a worker whose supervisor died finishes its association and exits.

    SIGTERM starts the worker's grace period (:func:`wlmd.process.worker.request_stop`):
    a restarted or crashed supervisor neither cuts a running query nor leaves
    workers serving forever.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
    if os.getppid() != supervisor_pid:  # it died between fork() and prctl()
        os._exit(1)
