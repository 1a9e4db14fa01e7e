"""The supervisor: listen, accept, apply the connection policy, fork, reap, handle signals.

In the spirit of gunicorn's arbiter: signal handlers only queue the signal
and wake the loop through a pipe; the loop dispatches; children are reaped
with ``waitpid(-1, WNOHANG)``; no DICOM logic lives here. It is
single-threaded, so forking is safe. With ``--single-process`` it serves one
association at a time itself, as wlmscpfs does.

Each job beside the loop has its own module: the listening sockets
(:mod:`wlmd.process.listening`), A-ASSOCIATE-RJ without forking
(:mod:`wlmd.process.rejections`), the book of workers (:mod:`wlmd.process.workers`), the
spare-worker pool (:mod:`wlmd.process.sparepool`). The services' data kept warm
across fork() it knows only through the hooks of :mod:`wlmd.process.hooks`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import signal
import socket
import time

from wlmd.association import policy, tls
from wlmd.association.peers import format_peer, presentable_address
from wlmd.process import listening, rejections, spare, sparepool, systemd, warmup, workers
from wlmd.process.helpers import Helper, HelperProcesses
from wlmd.process.hooks import ServiceData
from wlmd.process.logsetup import LogThrottle
from wlmd.process.proctitle import set_title
from wlmd.process.worker import (  # loaded before forking: workers start warm
    IMPLEMENTATION_CLASS_UID,
    next_association_id,
    request_stop,
    serve_association,
    settings,
    stop_fd,
    stop_requested,
)
from wlmd.services import callers
from wlmd.services.catalogue import Catalogue
from wlmd.settings.config import Config, ProcessModel

LOG = logging.getLogger("wlmd.supervisor")


class _Stop(BaseException):
    """Raised by the signal handler to end an inline (single-process) association."""


class Supervisor:
    def __init__(self, config: Config) -> None:
        self.config = config
        #: the services' data, through the hooks of process.hooks: preload, refresh, fork
        self.data: ServiceData = Catalogue(config)
        self.callers = callers.read(config.allowed_callers) if config.allowed_callers else None
        self.tls = tls.server_context(config)
        self.sockets: list[socket.socket] = []
        self.workers = workers.Workers()
        self.max_per_host = policy.per_host_limit(
            config.max_associations, config.max_associations_per_host
        )
        self._signals: list[int] = []
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopping = False
        self._serving_inline = False
        self.pid = os.getpid()
        self.rejections = rejections.PendingRejections(float(config.acse_timeout))
        self._accept_log = LogThrottle(burst=3)
        self.spares = sparepool.SparePool(
            config.spare_workers if config.process_model is ProcessModel.FORK else 0
        )
        self.helpers = HelperProcesses(
            [Helper(name, run) for name, run in self.data.helpers()], self._become_helper
        )
        self.access = None
        if config.access_control:
            from wlmd.process.access import AccessControl

            self.access = AccessControl(host_lookup=config.host_lookup)

    # --- start-up --------------------------------------------------------------------
    def listen(self) -> None:
        """Bind the port, or take systemd's sockets (:func:`wlmd.process.listening.listen`)."""
        self.sockets.extend(listening.listen(self.config))

    def file_descriptors(self) -> list[int]:
        """Descriptors that must survive daemonising: sockets, wake-up pipe, the data's."""
        return [
            *(sock.fileno() for sock in self.sockets),
            self._wake_r,
            self._wake_w,
            *self.data.descriptors(),
        ]

    def load(self) -> None:
        """Preload the data before READY=1 and before forking: workers start warm."""
        self.data.preload(systemd.LoadProgress())  # EXTEND_TIMEOUT_USEC, STATUS

    def listening_on(self) -> str:
        return listening.listening_on(self.sockets)

    # --- main loop ---------------------------------------------------------------------
    def _update_title(self) -> None:
        live = len(self.workers)
        set_title(
            f"supervisor port {self.config.port} [{live}/{self.config.max_associations}"
            " associations]"
        )

    def install_signal_handlers(self) -> None:
        """Queue signals from now on; called before readiness is announced, so that a
        SIGTERM sent right after READY=1 stops us gracefully instead of killing us."""
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, self._queue_signal)

    def run(self) -> int:
        self._update_title()
        self.install_signal_handlers()
        self.helpers.start_all()
        try:
            while not self._stopping:
                self._dispatch_signals()
                if self._stopping:
                    break
                self.helpers.start_due()
                if not self.helpers.jobs_running() and (job := self.data.background_job()):
                    self.helpers.run_once(Helper(*job))
                self._ensure_spare()
                self.rejections.expire()
                data_fds = self.data.descriptors()
                watched: list[socket.socket | int] = [
                    *self.sockets,
                    self._wake_r,
                    *self.rejections.sockets(),
                    *self.spares.channels(),
                    *data_fds,
                ]
                try:
                    ready, _, _ = select.select(watched, [], [], self._wait_time())
                except InterruptedError:
                    continue
                if self.data.refresh_due(ready):
                    self._refresh_snapshot()
                for sock in ready:
                    if sock is self._wake_r:
                        _drain(self._wake_r)
                    elif sock in data_fds:
                        continue  # handled above, before accepting: workers fork current
                    elif sock in self.sockets:
                        self._accept(sock)  # type: ignore[arg-type]
                    elif (done := self.spares.by_channel(sock)) is not None:
                        self._spare_finished(done)
                    elif self.rejections.waiting(sock):
                        self.rejections.on_readable(sock)  # type: ignore[arg-type]
                    # else: a spare's channel, closed earlier in this round (reaped, retired)
        finally:
            self._shutdown()
        return 0

    def _wait_time(self) -> float:
        wait = self.spares.wait_time(self.rejections.wait_time(1.0))
        return self.helpers.wait_time(self.data.wait_time(wait))

    def _refresh_snapshot(self) -> None:
        """Keep the data current, so new workers start with little to re-read."""
        started = time.monotonic()
        if self.data.refresh():
            self.spares.new_generation(retire_idle=False)  # stale spares serve once, then retire
        LOG.debug("snapshot refreshed in %.1f ms", (time.monotonic() - started) * 1000)

    def _queue_signal(self, signum: int, _frame: object) -> None:
        if self._serving_inline and signum in (signal.SIGTERM, signal.SIGINT):
            # --single-process: the association runs in this process; stop now,
            # as wlmscpfs does, rather than after the peer releases.
            raise _Stop()
        self._signals.append(signum)
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"!")

    def _dispatch_signals(self) -> None:
        if any(sig in (signal.SIGTERM, signal.SIGINT) for sig in self._signals):
            self.helpers.begin_stop()  # a helper that got the same signal is not restarted
        while self._signals:
            sig = self._signals.pop(0)
            if sig == signal.SIGCHLD:
                self.reap()
            elif sig == signal.SIGHUP:
                self._handle_hup()
            elif sig in (signal.SIGTERM, signal.SIGINT):
                LOG.info("received %s, shutting down", signal.Signals(sig).name)
                self._stopping = True

    def _handle_hup(self) -> None:
        from wlmd.process.logsetup import reload_logging

        if reload_logging(self.config):  # else it said why, and the old one stays
            LOG.info("SIGHUP: logging configuration reloaded")
            self.spares.new_generation()  # forked with the old one: the next log anew

    def _accept(self, listener: socket.socket) -> None:
        try:
            conn, peer = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            more = self._accept_log.take()
            if more is not None:
                LOG.error("accept failed: %s%s", exc, more)
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(0.1)  # out of descriptors: don't spin
            return
        peer = (presentable_address(peer[0]), peer[1])  # never "::ffff:10.1.2.3"
        if self.access is not None and not self.access.allows(peer[0]):
            # Access control comes first: close before reading any PDU (logged by access).
            conn.close()
            return
        conn.setblocking(True)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.config.process_model is ProcessModel.SINGLE:
            self._serve_inline(conn, peer)
            return
        self.reap()
        from_host = self.workers.from_host(peer[0])
        rejection = policy.check_connection(
            running=len(self.workers),
            from_host=from_host,
            max_associations=self.config.max_associations,
            max_per_host=self.max_per_host,
        )
        if rejection is not None:
            self.rejections.reject_over_limit(
                conn,
                peer,
                rejection,
                running=len(self.workers),
                from_host=from_host,
                max_per_host=self.max_per_host,
            )
            return
        self._start_worker(conn, peer)

    def _serve_inline(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        self._serving_inline = True
        try:
            serve_association(
                conn, peer, self.config, self.data.router, callers=self.callers, tls=self.tls
            )
        except _Stop:
            LOG.info("stopping: association from %s cut short", format_peer(*peer))
            self._stopping = True
        except Exception:
            LOG.exception("association from %s failed", format_peer(*peer))
        finally:
            self._serving_inline = False
            self._update_title()

    def _start_worker(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        """Hand ``conn`` to the oldest spare worker, or fork one for it if there is none."""
        handed = self.spares.hand_over(conn, peer, next_association_id)
        if handed is not None:
            pid, ident = handed
            conn.close()
            self.workers[pid] = workers.WorkerInfo(ident, peer[0], format_peer(*peer))
            self._update_title()
            self._ensure_spare()
            return
        self._fork_worker(conn, peer)
        self._ensure_spare()

    def _ensure_spare(self) -> None:
        """Fork a spare worker (fork mode, not while stopping) when one is missing.

        Missing: fewer than --spare-workers idle or serving (those come back).
        Connections beyond them get a worker forked for each, as without spares.
        """
        if self._stopping or not self.spares.may_fork():
            return
        warmup.prepare(IMPLEMENTATION_CLASS_UID, settings(self.config))
        ours, theirs = spare.channel_pair()
        for_child = self.data.before_fork()
        try:
            pid = os.fork()
        except OSError as exc:
            LOG.error("cannot fork a spare worker: %s", exc)
            ours.close()
            theirs.close()
            self.data.in_parent(for_child)
            self.spares.fork_failed()
            return
        if pid:
            theirs.close()
            self.data.in_parent(for_child)
            self.spares.forked(pid, ours)
            return
        status = 0
        try:
            ours.close()
            self.data.in_child(for_child)
            self._become_worker(None)
            warmup.run(settings(self.config))
            spare.serve_connections(theirs, stop_fd(), self._serve_handed, stop_requested)
        except BaseException:
            LOG.exception("spare worker failed")
            status = 1
        finally:
            logging.shutdown()
            os._exit(status)

    def _serve_handed(self, conn: socket.socket, peer: tuple[str, int], ident: str) -> None:
        """In a spare worker: one association handed over by the supervisor."""
        set_title(f"worker {format_peer(*peer)}: waiting for association request")
        serve_association(conn, peer, self.config, self.data.router, ident, self.callers, self.tls)
        set_title("spare worker: waiting for a connection")

    def _spare_finished(self, done: spare.Spare) -> None:
        """A busy spare worker's channel is readable: it finished its association (or exited)."""
        if not self.spares.came_back(done):  # it exited (or crashed): reap() reports it
            return
        info = self.workers.pop(done.pid, None)
        self._update_title()
        self.spares.keep(done, reuse=info is not None and not self._stopping)

    def _fork_worker(self, conn: socket.socket, peer: tuple[str, int]) -> None:
        for_child = self.data.before_fork()
        ident = next_association_id()
        try:
            pid = os.fork()
        except OSError as exc:
            LOG.error("cannot fork a worker for %s: %s", format_peer(*peer), exc)
            conn.close()
            self.data.in_parent(for_child)
            return
        if pid:
            self.data.in_parent(for_child)
            conn.close()
            self.workers[pid] = workers.WorkerInfo(ident, peer[0], format_peer(*peer))
            self._update_title()
            return
        status = 0
        try:
            self.data.in_child(for_child)
            self._become_worker(peer)
            serve_association(
                conn, peer, self.config, self.data.router, ident, self.callers, self.tls
            )
        except BaseException:
            LOG.exception("worker for %s failed", format_peer(*peer))
            status = 1
        finally:
            logging.shutdown()
            os._exit(status)

    def _become_worker(self, peer: tuple[str, int] | None) -> None:
        """In the child: default signals, no listening sockets, die with the supervisor."""
        if peer is None:
            set_title("spare worker: waiting for a connection")
        else:
            set_title(f"worker {format_peer(*peer)}: waiting for association request")
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, request_stop)  # also what a dying supervisor sends
        self._leave_supervisor()

    def _become_helper(self, name: str) -> None:
        """In a helper child: default signals, no sockets or pipes of ours, die with us."""
        set_title(name)
        for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        self._leave_supervisor()

    def _leave_supervisor(self) -> None:
        """In any child: close the listeners, the spares' channels and the wake-up pipe."""
        for sock in self.sockets:
            sock.close()
        self.spares.close_in_child()
        os.close(self._wake_r)
        os.close(self._wake_w)
        workers.die_with_parent(self.pid)

    def reap(self) -> None:
        for pid, status in workers.reaped():
            if self.spares.reaped(pid, status):
                continue  # an idle spare: no association to report
            if self.helpers.reaped(pid, status):
                continue  # restarted later, or stopping
            self.workers.ended(pid, status)
            self._update_title()

    def _shutdown(self) -> None:
        systemd.notify("STOPPING=1")
        for sock in self.sockets:
            sock.close()
        self.rejections.close_all()
        for pid in self.spares.stop():  # each exits on EOF; reaped below like a worker
            self.workers[pid] = workers.WorkerInfo("spare", "", "no one")
        self.workers.stop_all(self.reap)
        self.helpers.stop(self.reap)  # after the workers: what they wrote is still sent
        LOG.info("stopped")


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass
