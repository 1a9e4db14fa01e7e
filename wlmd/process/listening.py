"""The listening sockets: bind the port, or take the ones systemd passed (socket activation).

Split from the supervisor, which only asks for its sockets and a text to
log. A port that cannot be bound is a :class:`ListenError`: one line at
start-up, exit status 1, before detaching (see :func:`wlmd.process.server.serve`).
"""

from __future__ import annotations

import errno
import logging
import socket

from wlmd.association.peers import format_peer
from wlmd.process import systemd
from wlmd.settings.config import Config

#: the supervisor's logger: these are its start-up lines
LOG = logging.getLogger("wlmd.supervisor")


def listen(config: Config) -> list[socket.socket]:
    """Bind the port: the given address, or all interfaces (IPv6 + IPv4 where possible).

    Under socket activation (``wlmd.socket``) the sockets systemd passed
    are used instead, and the port and listen address are not bound.
    """
    inherited = systemd.inherited_sockets()
    if inherited:
        LOG.info(
            "listening on %s (socket from systemd, %s mode)",
            listening_on(inherited),
            config.process_model.value,
        )
        _warn_unused_listen_settings(config, inherited)
        return list(inherited)
    address = config.listen_address
    port = config.port
    if address:
        try:
            infos = socket.getaddrinfo(
                address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise ListenError(_where((address, port)), exc) from None
        family, _, _, _, sockaddr = infos[0]
        sockets = [_bind(family, sockaddr)]
    else:
        try:
            sock = _bind(socket.AF_INET6, ("::", port), dual_stack=True)
        except ListenError as v6_error:
            try:
                sock = _bind(socket.AF_INET, ("0.0.0.0", port))
            except ListenError as v4_error:
                # Say why [::] failed, unless that was only "no IPv6 here".
                raise (v4_error if v6_error.errno in _NO_IPV6 else v6_error) from None
        sockets = [sock]
    LOG.info("listening on %s (%s mode)", listening_on(sockets), config.process_model.value)
    return sockets


def listening_on(sockets: list[socket.socket]) -> str:
    """Where ``sockets`` listen, for the log and the service manager: "[::]:104"."""
    return ", ".join(_where(s.getsockname()) for s in sockets)


def _warn_unused_listen_settings(config: Config, sockets: list[socket.socket]) -> None:
    """Say so when the port or listen address configured is not the socket's.

    Under socket activation (the packaged default) the socket unit decides
    where wlmd listens; an administrator who changed ``port`` in wlmd.conf
    would otherwise wonder why nothing listens there.
    """
    ports = {s.getsockname()[1] for s in sockets}
    if config.port not in ports or config.listen_address:
        LOG.warning(
            "port %d%s not used: systemd passed the listening socket %s "
            "(change it in the socket unit: systemctl edit wlmd.socket)",
            config.port,
            f" and listen address {config.listen_address}" if config.listen_address else "",
            listening_on(sockets),
        )


class ListenError(OSError):
    """The port cannot be bound: ``str()`` is "cannot listen on ADDRESS:PORT: reason".

    An OSError (``errno`` is the bind's), so start-up reports it like the
    other system errors: one line, exit status 1.
    """

    def __init__(self, where: str, exc: OSError) -> None:
        super().__init__(exc.errno, exc.strerror or str(exc))
        self.where = where

    def __str__(self) -> str:
        return f"cannot listen on {self.where}: {self.strerror}"


#: socket() or bind() on [::] failing with these means "no IPv6 here", not "port taken"
_NO_IPV6 = (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.EADDRNOTAVAIL)


def _bind(family: int, sockaddr: tuple, dual_stack: bool = False) -> socket.socket:  # type: ignore[type-arg]
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:
        raise ListenError(_where(sockaddr), exc) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
        sock.bind(sockaddr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        raise ListenError(_where(sockaddr), exc) from None
    return sock


def _where(sockname: tuple) -> str:  # type: ignore[type-arg]
    return format_peer(sockname[0], sockname[1])
