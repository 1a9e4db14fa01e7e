"""A pre-forked spare worker: the fork happens before the connection arrives, not after.

Forking a worker per association keeps associations apart (as wlmscpfs's
fork per association), but in CPython the new process also pays for
copy-on-write: every object it touches has its reference count written,
so each page it touches is copied first. Measured on the poll cycle
(connect, associate, one C-FIND, release): fork and first touches were
~7 ms of the ~10 ms a forked worker needed, against ~2 ms when the same
code ran in an already warm process.

So the supervisor keeps one worker forked ahead: it has run the association
layer once on canned PDUs (:func:`wlmd.worker.warm_up`), frozen what it holds
(``gc.freeze``), and waits on a socket pair. An accepted connection is passed
to it with SCM_RIGHTS together with its association tag and peer; it then
serves that one association and exits, exactly as a worker forked for it,
and the supervisor forks the next spare. Limits, access control and
rejections stay in the supervisor, before the hand-over.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
from dataclasses import dataclass

LOG = logging.getLogger("wlmd.supervisor")

#: what the supervisor sends with the descriptor: "tag host port", ASCII
_MESSAGE_MAX = 512


@dataclass
class Spare:
    """The supervisor's handle on its spare worker."""

    pid: int
    channel: socket.socket

    def hand_over(self, conn: socket.socket, peer: tuple[str, int], ident: str) -> bool:
        """Pass ``conn`` to the spare; False if it is gone (the caller forks instead)."""
        message = f"{ident} {peer[0]} {peer[1]}".encode("ascii", "replace")
        try:
            socket.send_fds(self.channel, [message], [conn.fileno()])
        except OSError:
            return False
        finally:
            self.channel.close()
        return True

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
