"""Reading whole PDUs from one connection, with bounds and timeouts (PS3.8 9.3).

A worker serves one association at a time, so it reads with plain blocking
calls: no reactor threads polling each other. Every wait is bounded (the
ACSE timeout before and during a PDU, the DIMSE timeout between requests)
and can be woken by a stop request (a byte on ``stop_fd``, written by the
SIGTERM handler), so a graceful stop does not wait for a silent peer.

A peer could make us buffer gigabytes: announce a 4 GB PDU. A P-DATA-TF body
longer than -pdu (any other PDU: 64 KiB) is refused from its header, before
anything of it is read.
"""

from __future__ import annotations

import select
import socket
import ssl
import time

from wlmd.association.wire import (
    MAX_ASSOCIATION_PDU,
    P_DATA_TF,
    PDU_HEADER,
)

#: how much one recv() asks for beyond what the PDU needs (fewer system calls)
_CHUNK = 65536


class LinkError(Exception):
    """The connection cannot carry the association any further; ``str()`` says why."""


class PeerClosed(LinkError):
    """The peer closed or reset the connection (an A-P-ABORT, PS3.8 7.4)."""


class PduTooLong(LinkError):
    """A PDU header announced more than we accept (logged as a warning by the caller)."""


class LinkTimeout(LinkError):
    """Nothing (or not the whole PDU) arrived in time."""


class Link:
    """One connection's PDUs: ``read_pdu()`` returns (type, whole PDU bytes)."""

    def __init__(self, sock: socket.socket, stop_fd: int | None = None) -> None:
        self.sock = sock
        self.stop_fd = stop_fd
        #: -pdu: the longest P-DATA-TF body we announced we accept (PS3.8 D.1)
        self.max_pdata = MAX_ASSOCIATION_PDU
        self._buffer = bytearray()

    # --- waiting ----------------------------------------------------------------------
    def _buffered(self) -> bool:
        if self._buffer:
            return True
        return isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0

    def wait(self, timeout: float | None) -> str:
        """Until the peer sends something: "data", "stop" (stop_fd readable) or "timeout"."""
        if self._buffered():
            return "data"
        watched: list[socket.socket | int] = [self.sock]
        if self.stop_fd is not None:
            watched.append(self.stop_fd)
        ready, _, _ = select.select(watched, [], [], timeout)
        if self.sock in ready:
            return "data"
        return "stop" if ready else "timeout"

    def data_waiting(self) -> bool:
        """Whether the peer sent something we have not read (never blocks)."""
        if self._buffered():
            return True
        ready, _, _ = select.select([self.sock], [], [], 0)
        return bool(ready)

    # --- reading ----------------------------------------------------------------------
    def _fill(self, need: int, deadline: float) -> None:
        while len(self._buffer) < need:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LinkTimeout("PDU incomplete when the timeout passed")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(max(need - len(self._buffer), _CHUNK))
            except TimeoutError:
                raise LinkTimeout("PDU incomplete when the timeout passed") from None
            except OSError as exc:
                raise PeerClosed(f"connection failed: {exc.strerror or exc}") from None
            if not chunk:
                raise PeerClosed("connection closed by the peer")
            self._buffer += chunk

    def read_pdu(self, timeout: float) -> tuple[int, bytes]:
        """The next PDU, header included; waits at most ``timeout`` seconds for all of it."""
        deadline = time.monotonic() + timeout
        self._fill(PDU_HEADER, deadline)
        kind = self._buffer[0]
        length = int.from_bytes(self._buffer[2:6], "big")
        limit = self.max_pdata if kind == P_DATA_TF else MAX_ASSOCIATION_PDU
        if length > limit:
            raise PduTooLong(f"PDU of {length} bytes refused (the limit is {limit}, see -pdu)")
        total = PDU_HEADER + length
        self._fill(total, deadline)
        pdu = bytes(self._buffer[:total])
        del self._buffer[:total]
        return kind, pdu

    # --- writing ----------------------------------------------------------------------
    def send(self, data: bytes, timeout: float | None) -> None:
        self.sock.settimeout(timeout)
        self.sock.sendall(data)
