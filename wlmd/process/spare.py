"""Spare workers (--spare-workers): forked before their connections arrive, reused in turn.

Forking a worker per association keeps associations apart (as wlmscpfs's
fork per association), but in CPython the new process also pays for
copy-on-write: every object it touches has its reference count written,
so each page it touches is copied first. Measured on the poll cycle
(connect, associate, one C-FIND, release): fork and first touches were
~7 ms of the ~10 ms a forked worker needed, against ~2 ms when the same
code ran in an already warm process.

So with ``--spare-workers N`` the supervisor keeps N workers forked ahead:
each has run one canned association through the association layer
(:mod:`wlmd.process.warmup`), frozen what it holds (``gc.freeze``), and waits on a
socket pair. An accepted connection is passed to one with SCM_RIGHTS,
together with its association tag and peer, after the supervisor's limits,
access control and rejections. The worker serves that association; then it
says "ready" on the socket pair and serves the next one handed to it (one at
a time, at most :data:`MAX_ASSOCIATIONS` in all, as Apache's
MaxConnectionsPerChild or gunicorn's max_requests), because a process that
has served once no longer pays for the copies. A worker forked before the
last snapshot refresh, or one too many, is sent away (EOF) and exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass

LOG = logging.getLogger("wlmd.supervisor")

#: what the supervisor sends with the descriptor: "tag host port", ASCII
_MESSAGE_MAX = 512
#: associations one spare worker serves (one after another) before it exits
MAX_ASSOCIATIONS = 100
#: what a spare worker says when it has finished an association
READY = b"r"


@dataclass
class Spare:
    """The supervisor's handle on its spare worker."""

    pid: int
    channel: socket.socket
    #: the supervisor's snapshot generation when it was forked
    generation: int = 0

    def hand_over(self, conn: socket.socket, peer: tuple[str, int], ident: str) -> bool:
        """Pass ``conn`` to the spare; False if it is gone (the caller forks instead)."""
        message = f"{ident} {peer[0]} {peer[1]}".encode("ascii", "replace")
        try:
            socket.send_fds(self.channel, [message], [conn.fileno()])
        except OSError:
            self.retire()
            return False
        return True

    def finished(self) -> bool:
        """After the channel became readable: True if the worker is ready for another."""
        try:
            return self.channel.recv(16) == READY
        except OSError:
            return False

    def retire(self) -> None:
        """The spare is no longer wanted (stale snapshot, stopping): it exits on EOF."""
        with contextlib.suppress(OSError):
            self.channel.close()


def channel_pair() -> tuple[socket.socket, socket.socket]:
    """The supervisor's end and the spare's end.

    SOCK_SEQPACKET: one message carries one descriptor, and the spare sees
    EOF when the supervisor closes its end (a datagram pair would not).
    """
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    return ours, theirs


def wait_for_connection(
    channel: socket.socket, stop_fd: int
) -> tuple[socket.socket, tuple[str, int], str] | None:
    """In the spare: the connection to serve, its peer and tag; None to exit.

    None when the supervisor retired us (EOF), or a stop request came first.
    """
    while True:
        watched: list[socket.socket | int] = [channel, stop_fd]
        ready, _, _ = select.select(watched, [], [])
        if stop_fd in ready:
            return None
        try:
            message, fds, _flags, _addr = socket.recv_fds(channel, _MESSAGE_MAX, 1)
        except InterruptedError:
            continue
        except OSError:
            return None
        if not fds:
            return None
        conn = socket.socket(fileno=fds[0])
        for extra in fds[1:]:
            os.close(extra)
        try:
            ident, host, port = message.decode("ascii").split(" ")
            return conn, (host, int(port)), ident
        except ValueError:
            conn.close()
            return None


def serve_connections(
    channel: socket.socket,
    stop_fd: int,
    serve: Callable[[socket.socket, tuple[str, int], str], None],
    stopping: Callable[[], bool],
) -> None:
    """In the spare: serve the connections handed over, one at a time, until sent away."""
    for count in range(1, MAX_ASSOCIATIONS + 1):
        handed = wait_for_connection(channel, stop_fd)
        if handed is None:
            return
        serve(*handed)
        if stopping() or count == MAX_ASSOCIATIONS:  # no "ready": nothing more is handed
            return
        try:
            channel.send(READY)
        except OSError:
            return
