"""Wait for wlmd's ``READY=1`` the way systemd does: an ``sd_notify`` datagram socket.

wlmd's supervisor sends ``READY=1`` to ``$NOTIFY_SOCKET`` once it listens and has
loaded the storage areas (systemd's ``Type=notify``, sd_notify(3)); a test that
starts a program outside :mod:`tests.helpers.servers` (an installed wheel, the
Debian package) uses that signal instead of polling the port.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

READY_TIMEOUT = 30.0


@contextlib.contextmanager
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket (and its path) that even an unprivileged wlmd can send to."""
    directory = tempfile.mkdtemp(prefix="wlmd-notify-")
    os.chmod(directory, 0o711)
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(directory, ignore_errors=True)


def wait_for_ready(
    sock: socket.socket,
    proc: subprocess.Popen[bytes],
    log: Path,
    timeout: float = READY_TIMEOUT,
) -> list[str]:
    """Read sd_notify datagrams until READY=1; fail if wlmd exits or the deadline passes."""
    received: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(left, 0.5))
        if readable:
            message = sock.recv(4096).decode("utf-8", "replace")
            received.append(message)
            if "READY=1" in message.splitlines():
                return received
        elif proc.poll() is not None:
            pytest.fail(
                f"wlmd exited with {proc.returncode} before READY=1\n{log.read_text()}",
                pytrace=False,
            )
    pytest.fail(f"no READY=1 within {timeout}s (got {received})\n{log.read_text()}", pytrace=False)
    raise AssertionError  # not reached
