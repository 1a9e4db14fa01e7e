"""wlmd.process.spare on a real socket pair: hand-over with SCM_RIGHTS, "ready", the reuse limit."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from wlmd.process import spare

WAIT = 5.0


def test_connections_are_served_in_turn_and_the_last_sends_no_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(spare, "MAX_ASSOCIATIONS", 2)
    ours, theirs = spare.channel_pair()
    ours.settimeout(WAIT)
    stop_r, stop_w = os.pipe()
    served: list[tuple[tuple[str, int], str, bytes]] = []

    def serve(conn: socket.socket, peer: tuple[str, int], ident: str) -> None:
        with conn:
            served.append((peer, ident, conn.recv(16)))

    worker = threading.Thread(
        target=spare.serve_connections, args=(theirs, stop_r, serve, lambda: False), daemon=True
    )
    worker.start()
    try:
        for n in (1, 2):
            client, accepted = socket.socketpair()
            with client, accepted:
                handle = spare.Spare(0, ours)
                assert handle.hand_over(accepted, ("10.1.2.3", 4000 + n), f"a1.{n}")
                client.sendall(b"hello %d" % n)
                if n == 1:
                    assert handle.finished(), "no ready after the first association"
        worker.join(WAIT)
        assert not worker.is_alive(), "the spare did not stop after MAX_ASSOCIATIONS"
        ours.setblocking(False)
        with pytest.raises(BlockingIOError):  # no "ready" after the last one
            ours.recv(16)
    finally:
        ours.close()
        theirs.close()
        os.close(stop_r)
        os.close(stop_w)
    assert served == [
        (("10.1.2.3", 4001), "a1.1", b"hello 1"),
        (("10.1.2.3", 4002), "a1.2", b"hello 2"),
    ]


def test_retired_spare_stops_waiting() -> None:
    ours, theirs = spare.channel_pair()
    stop_r, stop_w = os.pipe()
    try:
        ours.close()  # the supervisor sends it away
        assert spare.wait_for_connection(theirs, stop_r) is None
    finally:
        theirs.close()
        os.close(stop_r)
        os.close(stop_w)
