"""Peer addresses as operators read them and as per-host limits count them.

On the default dual-stack listener (``[::]``, ``IPV6_V6ONLY`` off) an IPv4
peer arrives as ``::ffff:192.0.2.7``. Nobody writes a modality's address
that way, nor greps for it: every log line, the access-control check and the
per-host association count use the plain IPv4 form. IPv6 peers are shown in
brackets with their port (``[2001:db8::7]:4711``, RFC 3986's spelling), so the
port cannot be mistaken for the last group of the address.

A leaf module: the supervisor, the worker and access control all use it.
"""

from __future__ import annotations

import ipaddress


def presentable_address(peer_address: str) -> str:
    """The address as people (and libwrap) write it: IPv4-mapped IPv6 as IPv4, no scope.

    A link-local scope (``fe80::1%eth0``) is dropped: libwrap cannot parse
    it, and two scopes of one link-local address are still the same host.
    Anything that is not an IP address (a Unix socket path) is returned as is.
    """
    bare = peer_address.split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(bare)
    except ValueError:
        return bare
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def format_peer(address: str, port: int) -> str:
    """``192.0.2.7:4711`` or ``[2001:db8::7]:4711`` for the log."""
    host = presentable_address(address)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
