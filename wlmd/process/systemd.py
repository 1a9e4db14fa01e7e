"""How wlmd fits into the host's service manager: systemd or a classic init script.

* systemd: readiness (``READY=1``) and ``STOPPING=1`` go to ``$NOTIFY_SOCKET``
  (the unit is ``Type=notify``), and while the worklist loads,
  ``EXTEND_TIMEOUT_USEC`` with a ``STATUS`` of file counts
  (:class:`LoadProgress`); a ``wlmd.socket`` unit hands its listening
  socket over through ``$LISTEN_FDS`` (socket activation). Both are a few
  lines of the documented protocol (sd_notify(3), sd_listen_fds(3)), so no
  extra dependency.
* Classic init scripts: ``--daemon`` detaches through python-daemon's
  :class:`daemon.DaemonContext`; ``--pid-file`` names a pid file that is held
  with ``flock`` for as long as the server runs.

Why ``flock`` and not "is the pid in the file alive": a pid is reused after a
crash and a reboot, so a stale file can name a live, unrelated process; a
lock dies with its holder, always. The lock is taken *before* detaching so a
second start fails on the terminal with a clear message, and ``flock`` locks
belong to the open file (not to the process, as ``fcntl`` locks do), so the
lock survives the forks of daemonisation.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import stat
import time
from collections.abc import Callable, Iterable

LOG = logging.getLogger("wlmd.service")

#: sd_listen_fds(3): passed sockets start at descriptor 3.
SD_LISTEN_FDS_START = 3


class AlreadyRunning(Exception):
    """Another wlmd holds the pid file; ``str()`` says which pid and which file."""


class PidFileError(Exception):
    """The pid file cannot be created or written; ``str()`` is one line."""


# --- systemd ------------------------------------------------------------------------------


def notify(state: str) -> None:
    """sd_notify(3): one datagram to ``$NOTIFY_SOCKET``; nothing when not run by systemd."""
    target = os.environ.get("NOTIFY_SOCKET")
    if not target:
        return
    if target.startswith("@"):
        target = "\0" + target[1:]  # abstract namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(target)
            sock.sendall(state.encode())
    except OSError as exc:
        LOG.warning("cannot notify systemd (%s): %s", target.lstrip("\0"), exc)


def progress_due(last: float | None, now: float, interval: float, done: int, total: int) -> bool:
    """Whether :class:`LoadProgress` sends now: first call, last file, or ``interval`` since.

    "Last file" is ``done == total`` exactly: files that appear during the
    load push ``done`` past ``total`` and must not make every further file
    send a message.
    """
    return last is None or done == total or now - last >= interval


class LoadProgress:
    """Keep systemd waiting while the worklist loads, and show how far it got.

    The unit's ``TimeoutStartSec=`` bounds the time to ``READY=1``, which
    comes after every storage area is parsed (about 40 s at 100,000 files).
    Rather than a start timeout long enough for the largest archive (a hung
    start then takes that long to fail), the supervisor sends, at the first
    file and then at least every :attr:`INTERVAL` seconds,
    ``EXTEND_TIMEOUT_USEC`` (sd_notify(3): "the service is still making
    progress, allow this much more from now") and ``STATUS=loading
    worklist: N of M files`` for ``systemctl status``; counts only, never
    what the files hold. A load that stops making progress still fails
    :attr:`EXTEND_USEC` after its last message.

    Call it as ``progress(done, total)``, e.g. as the progress callback of
    :meth:`wlmd.worklist.store.WorklistStore.load_all`. ``send`` and
    ``clock`` are for tests.
    """

    #: 30 s more from each message: many intervals, and a slow disk's hiccup, of margin
    EXTEND_USEC = 30_000_000
    INTERVAL = 2.0

    def __init__(
        self,
        send: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        interval: float = INTERVAL,
    ) -> None:
        self._send = send or notify
        self._clock = clock
        self.interval = interval
        self._last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if not progress_due(self._last, now, self.interval, done, total):
            return
        self._last = now
        self._send(
            f"EXTEND_TIMEOUT_USEC={self.EXTEND_USEC}\n"
            f"STATUS=loading worklist: {done} of {max(done, total)} files"
        )


def inherited_sockets() -> list[socket.socket]:
    """The listening sockets systemd passed us (socket activation), or [] if none.

    sd_listen_fds(3): ``$LISTEN_PID`` must be our pid (the variables may have
    been inherited from a parent), ``$LISTEN_FDS`` descriptors start at 3.
    The variables are removed so that workers and anything they start don't
    take the sockets for theirs. Only listening TCP stream sockets are
    accepted; anything else is a unit file mistake worth stopping for.
    """
    pid = os.environ.get("LISTEN_PID", "")
    count = os.environ.get("LISTEN_FDS", "")
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    if not (pid.isdigit() and int(pid) == os.getpid() and count.isdigit()):
        return []
    sockets = []
    for fd in range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + int(count)):
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise OSError(errno.ENOTSOCK, f"descriptor {fd} from systemd is not a socket")
        sock = socket.socket(fileno=fd)
        if sock.type != socket.SOCK_STREAM or not sock.getsockopt(
            socket.SOL_SOCKET, socket.SO_ACCEPTCONN
        ):
            raise OSError(
                errno.EINVAL,
                f"descriptor {fd} from systemd is not a listening TCP socket "
                "(the .socket unit needs ListenStream= and Accept=no)",
            )
        os.set_inheritable(fd, False)
        sock.setblocking(False)
        sockets.append(sock)
    return sockets


# --- pid file --------------------------------------------------------------------------------


class PidFile:
    """A pid file held with ``flock`` while the server runs.

    :meth:`acquire` fails with :class:`AlreadyRunning` if another process
    holds it; a file left by a process that is gone is simply taken over
    (and logged). :meth:`write` records the final pid (after daemonising),
    :meth:`release` removes the file.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise PidFileError(f"cannot open pid file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise AlreadyRunning(
                f"already running as {who} (pid file {self.path} is locked)"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise PidFileError(f"cannot lock pid file {self.path}: {exc.strerror}") from None
        stale = _read_pid(fd)
        if stale:
            LOG.info("pid file %s named pid %d, which is gone; replacing it", self.path, stale)
        # Empty until write() names the final (daemonised) process: a reader never
        # sees the stale pid once we own the file.
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        self.fd = fd

    def write(self, pid: int) -> None:
        assert self.fd is not None, "acquire() first"
        try:
            os.ftruncate(self.fd, 0)
            os.pwrite(self.fd, f"{pid}\n".encode(), 0)
        except OSError as exc:
            raise PidFileError(f"cannot write pid file {self.path}: {exc.strerror}") from None

    def release(self) -> None:
        if self.fd is None:
            return
        # Unlink while still holding the lock, so nobody can lock the old
        # inode in between and believe they own the (now removed) file.
        with contextlib.suppress(OSError):
            if os.fstat(self.fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)
        os.close(self.fd)
        self.fd = None


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# --- classic daemon -----------------------------------------------------------------------


def daemonize(keep_fds: Iterable[int]) -> None:
    """Detach from the terminal (double fork, setsid, cwd /, std streams to /dev/null).

    ``keep_fds`` (listening sockets, the pid file, the supervisor's wake-up
    pipe) stay open; every other descriptor is closed, as a daemon should,
    so log handlers must be set up again afterwards. Returns in the
    daemon; the original process exits with status 0.
    """
    import daemon  # python-daemon; imported here because only --daemon needs it

    context = daemon.DaemonContext(
        working_directory="/",
        umask=0o022,
        detach_process=True,
        files_preserve=sorted(set(keep_fds)),
        # The supervisor installs its own handlers; python-daemon's default
        # SIGTERM handler would raise SystemExit in the middle of its loop.
        signal_map={},
    )
    context.open()
