"""A real wlmd with its REST API, and a small HTTP client for tests (urllib, timeouts always).

The API's socket is bound before READY=1 (wlmd.api.part), so tests wait for
READY=1 on an sd_notify socket (tests.helpers.notify) and then talk to the
API at once: a request that arrives before the helper child accepts waits in
the listen backlog.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

from tests.helpers import servers
from tests.helpers.notify import notify_socket, wait_for_ready

HTTP_TIMEOUT = 10.0


@dataclass
class Reply:
    status: int
    headers: Message  # case-insensitive, as HTTP header names are
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class ApiServer:
    server: servers.Server
    api_port: int
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.api_port}"

    @property
    def dicom_port(self) -> int:
        return self.server.port

    def log(self) -> str:
        return self.server.log()


def request(
    method: str,
    url: str,
    body: object = None,
    *,
    token: str | None = None,
    context: ssl.SSLContext | None = None,
    timeout: float = HTTP_TIMEOUT,
) -> Reply:
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = "application/dicom+json"
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, exc.headers, exc.read())


@contextlib.contextmanager
def wlmd_with_api(
    data_files_path: Path | str, options: Sequence[str] = (), scheme: str = "http"
) -> Iterator[ApiServer]:
    """``wlmd -v --api-port N OPTIONS`` over ``data_files_path``, returned after READY=1."""
    port, api_port = servers.free_port(), servers.free_port()
    argv = servers.wlmd_command(
        ["-v", "--api-port", str(api_port), *options], data_files_path, port
    )
    env = {**os.environ}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(servers.REPO_ROOT), env.get("PYTHONPATH")])
    )
    with notify_socket() as (sock, path):
        env["NOTIFY_SOCKET"] = path
        proc, log_path = servers._spawn("wlmd", argv, env, None)
        try:
            wait_for_ready(sock, proc, log_path)
            yield ApiServer(servers.Server("wlmd", proc, port, log_path, argv), api_port, scheme)
        finally:
            servers.stop(proc)
