"""Pending rejections: A-ASSOCIATE-RJ for connections over the limits, without forking.

PS3.8 9.3.4: a connection over --max-associations (or
--max-associations-per-host) is answered with A-ASSOCIATE-RJ, as wlmscpfs
does, rather than being closed unanswered. The supervisor does this itself
inside its select loop (:class:`PendingRejections`), so rejecting never
blocks it and never costs a fork.
"""

from __future__ import annotations

import logging
import socket
import time

from wlmd.association import policy
from wlmd.association.peers import format_peer
from wlmd.association.wire import A_ASSOCIATE_RQ, MAX_ASSOCIATION_PDU, associate_rj
from wlmd.process.logsetup import LogThrottle

#: the supervisor's logger: these are its lines
LOG = logging.getLogger("wlmd.supervisor")


class PendingRejections:
    """Connections to answer with A-ASSOCIATE-RJ, handled inside the select loop.

    The supervisor reads each A-ASSOCIATE-RQ without blocking and without
    forking, so a silent peer over the limit cannot stall accepting, reaping
    or signal handling; it is dropped after the ACSE timeout. The whole RQ is
    read before answering: closing with unread data would reset the
    connection and the peer might never see the rejection.
    """

    #: an A-ASSOCIATE-RQ is a few hundred bytes; never buffer more (as workers: 64 KiB)
    MAX_RQ = MAX_ASSOCIATION_PDU
    #: connections waiting for their rejection at once; more are closed straight away,
    #: so a flood of silent connections cannot take every file descriptor
    MAX_PENDING = 64

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._pending: dict[socket.socket, tuple[float, bytearray, policy.Rejection]] = {}
        self._rejection_log = LogThrottle()
        self._flood_log = LogThrottle(burst=1)
        self._host_rejection_log = LogThrottle()

    def add(self, conn: socket.socket, rejection: policy.Rejection) -> bool:
        """Queue ``conn`` for its A-ASSOCIATE-RJ; False (and closed) if too many wait."""
        if len(self._pending) >= self.MAX_PENDING:
            conn.close()
            return False
        conn.setblocking(False)
        self._pending[conn] = (time.monotonic() + self.timeout, bytearray(), rejection)
        return True

    def reject_over_limit(
        self,
        conn: socket.socket,
        peer: tuple[str, int],
        rejection: policy.Rejection,
        *,
        running: int,
        from_host: int,
        max_per_host: int,
    ) -> None:
        """Queue an A-ASSOCIATE-RJ; log it (a flood gets a few lines, not one per attempt).

        ``running`` and ``from_host`` are the associations counted against
        --max-associations and --max-associations-per-host (``max_per_host``).
        """
        if not self.add(conn, rejection):
            more = self._flood_log.take()
            if more is not None:
                LOG.warning(
                    "%d connections over --max-associations wait for their rejection: "
                    "closing further ones at once%s",
                    self.MAX_PENDING,
                    more,
                )
            return
        if rejection is policy.TOO_MANY_FROM_HOST:
            more = self._host_rejection_log.take()
            if more is not None:
                LOG.warning(
                    "association from %s rejected: %d associations from %s running "
                    "(--max-associations-per-host %d)%s",
                    format_peer(*peer),
                    from_host,
                    peer[0],
                    max_per_host,
                    more,
                )
            return
        more = self._rejection_log.take()
        if more is not None:
            LOG.warning(
                "association from %s rejected: %d associations running (--max-associations)%s",
                format_peer(*peer),
                running,
                more,
            )

    def sockets(self) -> list[socket.socket]:
        return list(self._pending)

    def waiting(self, conn: object) -> bool:
        return conn in self._pending

    def wait_time(self, default: float) -> float:
        if not self._pending:
            return default
        soonest = min(deadline for deadline, _, _ in self._pending.values())
        return max(0.0, min(default, soonest - time.monotonic()))

    def expire(self) -> None:
        now = time.monotonic()
        for conn, (deadline, _, _) in list(self._pending.items()):
            if now >= deadline:
                self._close(conn)

    def on_readable(self, conn: socket.socket) -> None:
        _, buffer, rejection = self._pending[conn]
        try:
            chunk = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._close(conn)
            return
        buffer += chunk
        if buffer[0] != A_ASSOCIATE_RQ:
            self._close(conn)
            return
        if len(buffer) < 6:
            return
        wanted = 6 + int.from_bytes(buffer[2:6], "big")
        if len(buffer) < wanted and len(buffer) < self.MAX_RQ:
            return
        try:
            conn.send(associate_rj(rejection.result, rejection.source, rejection.reason))
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: socket.socket) -> None:
        self._pending.pop(conn, None)
        conn.close()

    def close_all(self) -> None:
        for conn in list(self._pending):
            self._close(conn)
