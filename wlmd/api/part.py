"""The REST API's part of the catalogue: its listening socket, and the helper child serving it.

Like the UPS part (:mod:`wlmd.services.upsdata`) it keeps nothing the
workers need. The socket is bound in :meth:`ApiPart.preload`, before
READY=1, so a port in use stops start-up with one line; workers close their
inherited copy (:meth:`in_child`), the helper child serves it
(:mod:`wlmd.api.server`). It is not among :meth:`descriptors`: the
supervisor must not watch it (only the child accepts), and preloading
happens after ``--daemon`` detached, so nothing closes it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

from wlmd.authoring.files import unwritable_reason
from wlmd.services.quietpart import QuietPart
from wlmd.settings.config import Config
from wlmd.worklist.layout import storage_area_names


class ApiPart(QuietPart):
    """The hooks of :class:`wlmd.process.hooks.ServiceData` for the REST API."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.sock: socket.socket | None = None

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        address, port = self.config.api_listen_address, self.config.api_port
        assert port is not None, "the part exists with --api-port only"
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets whose
        # proto says TCP, and accepted sockets inherit it. Without it Nagle holds a
        # response's body behind its headers until the client's delayed ACK: +40 ms
        # per request on a keep-alive connection (measured with bench/api.py).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((address, port))
            sock.listen(128)
        except OSError as exc:
            sock.close()
            shown = f"[{address}]" if ":" in address else address or "*"
            raise OSError(
                f"cannot listen on {shown}:{port} (--api-port): {exc.strerror or exc}"
            ) from None
        self.sock = sock
        self._check_writable()

    def _check_writable(self) -> None:
        """Stop start-up when no storage area can be written (the API would answer 503
        to every write): usually the packaged unit's read-only sandbox."""
        root = self.config.data_files_path
        try:
            areas = [os.path.join(root, name) for name in storage_area_names(root)]
        except OSError:
            return  # the worklist's own checks report a missing data files path
        reasons = [why for area in areas if (why := unwritable_reason(area)) is not None]
        if areas and len(reasons) == len(areas):
            if self.sock is not None:
                self.sock.close()
                self.sock = None
            raise OSError(f"--api-port: no storage area under {root} can be written: {reasons[0]}")

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        def serve() -> int:  # asked for before preload(), run after it
            from wlmd.api.server import run  # Starlette and Uvicorn load in the child only

            assert self.sock is not None, "helpers are started after preload()"
            return run(self.config, self.sock)

        return [("rest api", serve)]

    def in_child(self, for_child: object) -> None:
        """A worker never accepts on the API's socket."""
        if self.sock is not None:
            self.sock.close()
