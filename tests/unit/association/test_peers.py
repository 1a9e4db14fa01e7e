"""Peer addresses in log lines and in the per-host count: one spelling per host."""

from __future__ import annotations

import pytest

from wlmd.association.peers import format_peer, presentable_address


@pytest.mark.parametrize(
    ("address", "port", "shown"),
    [
        ("127.0.0.1", 4711, "127.0.0.1:4711"),
        ("::ffff:127.0.0.1", 4711, "127.0.0.1:4711"),  # dual-stack listener, IPv4 peer
        ("::ffff:192.0.2.7", 104, "192.0.2.7:104"),
        ("::1", 4711, "[::1]:4711"),
        ("2001:DB8::7", 104, "[2001:db8::7]:104"),
        ("fe80::1%eth0", 104, "[fe80::1]:104"),
    ],
)
def test_format_peer(address: str, port: int, shown: str) -> None:
    assert format_peer(address, port) == shown


def test_mapped_and_plain_ipv4_are_one_host() -> None:
    """--max-associations-per-host counts a host once, however the socket reports it."""
    assert presentable_address("::ffff:10.1.2.3") == presentable_address("10.1.2.3") == "10.1.2.3"
