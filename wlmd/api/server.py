"""The REST API's helper child: Uvicorn serving :mod:`wlmd.api.app` on the pre-bound socket.

The supervisor binds the port before READY=1 (:mod:`wlmd.api.part`), so a
port in use stops start-up with one line and a client that connects right
after READY=1 waits in the listen backlog instead of being refused. This
child inherits that socket, runs Uvicorn (one process, asyncio, handlers in
its thread pool) and exits 0 on SIGTERM after Uvicorn's graceful shutdown;
the supervisor restarts it with backoff if it dies
(:mod:`wlmd.process.helpers`).
"""

from __future__ import annotations

import logging
import socket

from wlmd.api import settings
from wlmd.api.app import build
from wlmd.api.entries import Areas
from wlmd.authoring.locking import DEFAULT_LOCK_TIMEOUT
from wlmd.settings.config import Config

LOG = logging.getLogger("wlmd.api")


def url_of(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def run(config: Config, sock: socket.socket) -> int:
    """Serve until SIGTERM; returns the exit status."""
    import uvicorn

    token = settings.read_token(config.api_token_file) if config.api_token_file else None
    tls = settings.tls_of(config)
    # --lock-timeout bounds the server's wait for a writer; the API, a writer, waits
    # as long for the queries' read locks (default: authoring's 10 s, never forever).
    lock_timeout = config.lock_timeout if config.lock_timeout is not None else DEFAULT_LOCK_TIMEOUT
    areas = Areas(config.data_files_path, lock_timeout)
    server_config = uvicorn.Config(
        build(areas, token),
        log_config=None,  # wlmd's logging is already set up; lines go where wlmd's go
        access_log=False,  # it would log query strings (PatientID=...): _RequestLine logs
        lifespan="off",
        proxy_headers=False,  # log the real peer, not a header it sent
        server_header=False,
        loop="asyncio",
        http="h11",
    )
    server_config.load()
    if tls is not None:
        server_config.ssl = settings.server_context(tls)  # TLS 1.2+, Python's default ciphers
    # Uvicorn's start and stop lines repeat ours; its errors (warning and above) stay.
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    LOG.info("rest api listening on %s", url_of(sock, tls is not None))
    uvicorn.Server(server_config).run(sockets=[sock])
    return 0
