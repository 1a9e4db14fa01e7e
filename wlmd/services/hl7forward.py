"""MPPS -> RIS: each MPPS status change sent as an ORM^O01 (ORC-5 IP/CM/DC) over MLLP.

``--hl7-forward HOST:PORT`` runs this as a helper child of the supervisor
(:mod:`wlmd.process.helpers`), so the MPPS N-CREATE/N-SET response never
waits for the RIS: the workers only write the ``mpps`` table of the state
store, as they do without forwarding, and this process reads it — rows whose
``updated_at`` is past its cursor, oldest first, once they are
:data:`SETTLE` seconds old (a transaction that took its time stamp earlier
has committed by then). Each row's current status is sent
(:func:`wlmd.hl7.status.status_message`); a step that changed twice between
two looks is sent once, with its latest status, which is what the RIS needs.

The cursor (``updated_at`` and UID of the last row sent) is kept in a small
file beside the SQLite store, or under ``$STATE_DIRECTORY`` for PostgreSQL,
so a restart neither repeats nor skips; without a cursor file the first
start forwards changes from then on, not the store's history. A RIS that
cannot be reached, does not answer within :data:`TIMEOUT`, or answers
without an ACK is retried with the outbox's backoff (1 s doubling to 5
minutes), the cursor unmoved; an ACK other than AA/CA is logged with its
MSA-3 and not resent (resending the same status cannot fix it). One info
line per message sent: MPPS UID, status, RIS, ACK code, duration; no
patient data.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable

from wlmd.hl7 import ack, mllp
from wlmd.hl7.status import ORDER_STATUS, status_message
from wlmd.services.quietpart import QuietPart
from wlmd.services.stopsignal import StopSignal
from wlmd.services.upsdata import state_location
from wlmd.settings.config import Config
from wlmd.state import codec
from wlmd.state.backends import Backend, open_backend
from wlmd.state.outbox import backoff

LOG = logging.getLogger("wlmd.hl7")
SERVICE_NAME = "hl7 forwarder"
TIMEOUT = 10.0  # connect, and wait for the ACK
POLL = 0.5  # seconds between looks at the mpps table when idle
SETTLE = 0.5  # rows younger than this wait for the next look
BATCH = 50
CURSOR_NAME = "hl7-forward.cursor"


class ForwardSettingsError(Exception):
    """``--hl7-forward`` cannot be used; ``str()`` is the one line start-up stops with."""


def destination(config: Config) -> tuple[str, int] | None:
    """``--hl7-forward`` as (host, port); ForwardSettingsError for a bad one."""
    value = config.hl7_forward
    if not value:
        return None
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ForwardSettingsError(f"bad --hl7-forward {value!r}: give HOST:PORT")
    if not config.mpps_ae_titles:
        raise ForwardSettingsError("--hl7-forward only allowed with --mpps-ae-title")
    return host, int(port)


def cursor_path(config: Config) -> str | None:
    location = state_location(config)
    if location and "://" not in location:
        return os.path.join(os.path.dirname(os.path.abspath(location)), CURSOR_NAME)
    directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return os.path.join(directory, CURSOR_NAME) if directory else None


class Hl7ForwardPart(QuietPart):
    """The catalogue part: one helper child, nothing kept in the supervisor."""

    def __init__(self, config: Config) -> None:
        self.config = config
        target = destination(config)
        assert target is not None, "only made with --hl7-forward"
        self.target = target

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        return [(SERVICE_NAME, lambda: run_forwarder(self.config, self.target))]


def run_forwarder(config: Config, target: tuple[str, int]) -> int:
    """The helper child's body: forward until SIGTERM; returns the exit status."""
    location = state_location(config)
    assert location is not None, "--mpps-ae-title needs a state store"
    backend = open_backend(location)
    stop = StopSignal()
    path = cursor_path(config)
    cursor = _load_cursor(path) or (time.time(), "")
    _save_cursor(path, cursor)
    where = f"{target[0]}:{target[1]}"
    LOG.info("HL7 forwarder: MPPS status changes to %s", where)
    failures = 0
    while not stop.requested:
        rows = _changed(backend, cursor, time.time() - SETTLE)
        failed = False
        for uid, status, updated_at, data in rows:
            if stop.requested:
                break
            if status in ORDER_STATUS:
                started = time.monotonic()
                try:
                    code, text = send(target, status_message(codec.decode(data), ack.control_id()))
                except (OSError, ValueError) as exc:
                    failures += 1
                    delay = backoff(failures)
                    LOG.warning(
                        "HL7 forward of MPPS %s %s to %s failed: %s; retry in %g s",
                        uid, status, where, exc, delay,
                    )  # fmt: skip
                    stop.wait(delay)
                    failed = True
                    break
                failures = 0
                LOG.info(
                    "HL7 forward MPPS %s %s to %s: %s%s (%.3f s)",
                    uid, status, where, code, f": {text}" if text else "",
                    time.monotonic() - started,
                )  # fmt: skip
            cursor = (updated_at, uid)
            _save_cursor(path, cursor)
        if not failed and len(rows) < BATCH:
            stop.wait(POLL)
    backend.close()
    return 0


def _changed(
    backend: Backend, cursor: tuple[float, str], before: float
) -> list[tuple[str, str, float, bytes]]:
    after, uid = cursor
    with backend.transaction(write=False) as tx:
        rows = tx.execute(
            "SELECT uid, status, updated_at, dataset FROM mpps"
            " WHERE (updated_at > ? OR (updated_at = ? AND uid > ?)) AND updated_at < ?"
            " ORDER BY updated_at, uid LIMIT ?",
            (after, after, uid, before, BATCH),
        )
    return [(str(r[0]), str(r[1]), float(r[2]), bytes(r[3])) for r in rows]


def send(target: tuple[str, int], payload: bytes) -> tuple[str, str]:
    """Send one message, wait for its ACK: (MSA-1, MSA-3); OSError/ValueError when none."""
    with socket.create_connection(target, timeout=TIMEOUT) as conn:
        conn.sendall(mllp.frame(payload))
        decoder = mllp.Decoder()
        while True:
            data = conn.recv(65536)
            for event in decoder.feed(data) if data else decoder.close():
                if isinstance(event, mllp.Frame):
                    return _msa(event.payload)
            if not data:
                raise ValueError("connection closed without an ACK")


def _msa(payload: bytes) -> tuple[str, str]:
    for line in payload.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(b"MSA") and len(line) > 4:
            fields = line.decode("latin-1").split(line[3:4].decode("latin-1"))
            return (fields[1] if len(fields) > 1 else ""), (fields[3] if len(fields) > 3 else "")
    raise ValueError("the answer has no MSA segment")


def _load_cursor(path: str | None) -> tuple[float, str] | None:
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return float(data["updated_at"]), str(data["uid"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        LOG.warning("HL7 forwarder: cursor %s unusable (%s); forwarding from now", path, exc)
        return None


def _save_cursor(path: str | None, cursor: tuple[float, str]) -> None:
    if path is None:
        return
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"updated_at": cursor[0], "uid": cursor[1]}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        LOG.warning("HL7 forwarder: cursor %s not written: %s", path, exc.strerror)
