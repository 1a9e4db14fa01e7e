"""The UPS event sender: the outbox delivered as N-EVENT-REPORTs, and housekeeping.

Runs as a helper child of the supervisor (:mod:`wlmd.process.helpers`), so a
subscriber that is down or slow never holds a worker or an association. The
events were written to the outbox in the transaction of their change
(:mod:`wlmd.state.outbox`); this process claims the due ones, and hands each
subscriber's to a thread of its own that opens one association
(:mod:`wlmd.services.upsdelivery`) and sends them there one after another,
claiming that subscriber's next ones while the association is open. The
main thread claims only for subscribers that are not busy (and not resting
after a failure), so one that is down costs its own thread a connection
timeout and nothing else. Order per step and subscriber is the outbox's: a
row is claimable only once its predecessors are delivered.

Acknowledged on Success or Warning; anything else (no connection, no answer,
a Failure status) goes back with the outbox's backoff (1 s doubling to 5 min)
and one warning, at most three per subscriber a minute. A row is leased for
:data:`LEASE` seconds and given back unsent before that runs out, so another
sender (a node on the same PostgreSQL database) never sends it twice; a
sender killed in the middle leaves leases that its successor on this node
takes back at start (at least once after a crash, exactly once otherwise).

SCP Status Change (PS3.4 CC.2.4.2, Event Type 4, about the well-known
instance ``1.2.840.10008.5.1.4.34.5``): RESTARTED at start (once per
supervisor: a sender restarted after a crash does not repeat it), GOING DOWN
on SIGTERM, after which what is due is delivered for up to :data:`STOP_GRACE`
seconds, within the supervisor's 10 s. Housekeeping (``--ups-keep-final``;
``--ups-event-expiry`` for events a subscriber never took) runs at start and
every :data:`HOUSEKEEPING_EVERY` seconds; it logs counts only.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import mmap
import os
import socket
import sqlite3
import ssl
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from wlmd.services.stopsignal import StopSignal
from wlmd.services.upsdelivery import (
    EVENT_NAMES,
    AssociationFailed,
    EventLink,
    Timeouts,
    client_context,
    delivered,
    where,
)
from wlmd.services.upssubscribers import Subscriber, SubscriberTable
from wlmd.state.outbox import Delivery, backoff

if TYPE_CHECKING:
    from wlmd.services.upsdata import UpsData
    from wlmd.settings.config import Config
    from wlmd.state.repository import UpsRepository

LOG = logging.getLogger("wlmd.events")
T = TypeVar("T")

LEASE = 120.0  # seconds a claimed row is ours
LEASE_MARGIN = 30.0  # rows not sent this long before the lease ends are given back
CLAIM_LIMIT = 200  # rows per claim of the main thread
BATCH_LIMIT = 20  # rows per claim of a subscriber's thread
MAX_THREADS = 100
POLL = 0.1  # seconds between looks at the outbox when idle (workers write it)
HOUSEKEEPING_EVERY = 60.0
STOP_GRACE = 8.0


def run_event_sender(ups: UpsData, announced: mmap.mmap | None = None) -> int:
    """The helper's body; ``announced[0]`` is set once RESTARTED was written (the
    supervisor's memory shared with every sender it starts)."""
    stop = StopSignal()
    sender = Sender(ups.store, ups.subscribers, ups.config)
    return sender.run(stop, announced)


class Throttle:
    """At most ``burst`` lines per ``period`` seconds; says how many it dropped."""

    def __init__(self, burst: int = 3, period: float = 60.0) -> None:
        self.burst, self.period = burst, period
        self._window, self._used, self._dropped = -period, 0, 0

    def take(self) -> str | None:
        now = time.monotonic()
        if now - self._window >= self.period:
            self._window, self._used = now, 0
        if self._used >= self.burst:
            self._dropped += 1
            return None
        self._used += 1
        dropped, self._dropped = self._dropped, 0
        return f" ({dropped} more not logged)" if dropped else ""


class Sender:
    """The outbox, delivered by one thread per subscriber with work."""

    def __init__(
        self,
        store: UpsRepository,
        subscribers: SubscriberTable,
        config: Config,
        timeouts: Timeouts | None = None,
    ) -> None:
        self.store = store
        self.outbox = store.outbox
        self.subscribers = subscribers
        self.config = config
        self.timeouts = timeouts or Timeouts()
        self.calling_ae = (config.ups_ae_titles or ("WLMD",))[0]
        self.owner_prefix = f"{socket.gethostname()}:{config.port}:"
        self.owner = f"{self.owner_prefix}{os.getpid()}"
        self._db_lock = threading.Lock()  # one connection per process: one transaction at a time
        self._busy: dict[str, threading.Thread] = {}
        self._resting: dict[str, float] = {}  # subscriber -> monotonic time it may be tried
        self._lock = threading.Lock()  # _resting, _throttles
        self._throttles: dict[str, Throttle] = defaultdict(Throttle)
        self._abandon = threading.Event()  # the stop deadline: give rows back unsent
        self._done_read, self._done_write = _pipe()
        self._tls: ssl.SSLContext | None = None

    def db(self, call: Callable[..., T], *args: object, **kwargs: object) -> T:
        with self._db_lock:
            return call(*args, **kwargs)

    # --- the main thread --------------------------------------------------------------

    def run(self, stop: StopSignal, announced: mmap.mmap | None = None) -> int:
        taken = self._guarded("take back leases", self.outbox.release, self.owner_prefix)
        if taken:
            LOG.info(
                "%d event%s a previous event sender had claimed due again",
                taken,
                "" if taken == 1 else "s",
            )
        first = announced is None or not announced[0]
        if first and self._announce(going_down=False) and announced is not None:
            announced[0] = 1
        next_housekeeping = 0.0
        deadline: float | None = None
        while True:
            self._reap()
            now = time.monotonic()
            if stop.requested and deadline is None:
                deadline = now + STOP_GRACE
                self._announce(going_down=True)
            if deadline is not None and (now >= deadline or self._drained(deadline - now)):
                break
            if deadline is None and now >= next_housekeeping:
                self._housekeeping()
                next_housekeeping = now + HOUSEKEEPING_EVERY
            self._guarded("claim events", self._dispatch)
            wait = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            stop.wait(wait, self._done_read)
        self._abandon.set()  # threads give back what they have not sent
        end = time.monotonic() + 0.5
        for thread in list(self._busy.values()):
            thread.join(timeout=max(0.0, end - time.monotonic()))
        return 0  # a thread still connecting dies with us; its leases are taken back at start

    def _guarded(self, what: str, call: Callable[..., T], *args: object) -> T | None:
        try:
            return self.db(call, *args)
        except Exception as exc:  # the database is away or locked: try again later
            suffix = self._throttles["\0db"].take()
            if suffix is not None:
                LOG.error("event sender cannot %s: %s%s", what, exc, suffix)
            return None

    def _announce(self, going_down: bool) -> bool:
        """SCP Status Change to every subscriber, through the outbox; False if not written."""
        result = self._guarded("write SCP Status Change", self.store.scp_status_change, going_down)
        if result is None:
            return False
        if result.events:
            LOG.info(
                "SCP Status Change %s to %d subscribers",
                "GOING DOWN" if going_down else "RESTARTED",
                result.events,
            )
        return True

    def _drained(self, left: float) -> bool:
        """Stopping: nothing being sent and nothing due before the deadline."""
        if self._busy:
            return False
        due = self._guarded("read the outbox", self.outbox.next_due)
        return due is None or due > time.time() + left

    def _housekeeping(self) -> None:
        keep = float(self.config.ups_keep_final)
        expiry = float(self.config.ups_event_expiry)
        try:
            done = self.db(self.store.housekeeping, keep, keep, undelivered_expiry=expiry)
        except Exception as exc:
            LOG.error("housekeeping failed: %s", exc)
            return
        if done.expired_events:
            LOG.warning(
                "housekeeping: gave up %d events not delivered within %g s (%s)",
                sum(done.expired_events.values()),
                expiry,
                ", ".join(f"{ae}: {n}" for ae, n in sorted(done.expired_events.items())),
            )
        if done.completed or done.canceled or done.delivered_events:
            LOG.info(
                "housekeeping: deleted %d completed and %d canceled steps final for over %g s"
                " (%d kept by a deletion lock), %d delivered events",
                done.completed,
                done.canceled,
                keep,
                done.locked,
                done.delivered_events,
            )

    def _dispatch(self) -> None:
        if len(self._busy) >= MAX_THREADS:
            return
        now = time.monotonic()
        with self._lock:
            self._resting = {ae: t for ae, t in self._resting.items() if t > now}
            exclude = set(self._busy) | set(self._resting)
        due = self.outbox.next_due()
        if due is None or due > time.time():
            return
        rows = self.outbox.claim(self.owner, CLAIM_LIMIT, LEASE, exclude=sorted(exclude))
        groups: dict[str, list[Delivery]] = defaultdict(list)
        for row in rows:
            groups[row.subscriber].append(row)
        for ae, batch in groups.items():
            thread = threading.Thread(
                target=self._serve, args=(ae, batch), name=f"events {ae}", daemon=True
            )
            self._busy[ae] = thread
            thread.start()

    def _reap(self) -> None:
        for ae, thread in list(self._busy.items()):
            if not thread.is_alive():
                del self._busy[ae]

    # --- a subscriber's thread --------------------------------------------------------

    def _serve(self, ae: str, rows: list[Delivery]) -> None:
        try:
            self._deliver(ae, rows)
        except Exception as exc:  # the database or a bug: the leases run out, the rows come back
            if _store_error(exc):
                LOG.error("events for %s: the state store failed: %s", ae, exc)
            else:
                LOG.exception("event sender thread for %s failed", ae)
        finally:
            with contextlib.suppress(BlockingIOError):
                os.write(self._done_write, b".")

    def _deliver(self, ae: str, rows: list[Delivery]) -> None:
        subscriber = self.subscribers.address(ae)
        if subscriber is None:
            self._give_back(ae, rows, f"{ae} is not in --ups-subscribers")
            return
        try:
            link = EventLink.open(
                subscriber, self.calling_ae, self.timeouts, self._context(subscriber)
            )
        except (AssociationFailed, OSError) as exc:
            self._give_back(ae, rows, f"{where(subscriber)}: {exc}")
            return
        try:
            while rows and not self._abandon.is_set():
                claimed = time.monotonic()
                for index, row in enumerate(rows):
                    if self._abandon.is_set() or time.monotonic() > claimed + LEASE - LEASE_MARGIN:
                        self._give_back(ae, rows[index:], "", delay=0.0)
                        return
                    try:
                        self._send(link, subscriber, row)
                    except AssociationFailed as exc:
                        self._give_back(ae, rows[index:], f"{where(subscriber)}: {exc}")
                        return
                rows = self.db(self.outbox.claim, self.owner, BATCH_LIMIT, LEASE, subscriber=ae)
            if rows:
                self._give_back(ae, rows, "", delay=0.0)
        finally:
            link.close()

    def _send(self, link: EventLink, subscriber: Subscriber, row: Delivery) -> None:
        """One report, acknowledged or retried (AssociationFailed: the rest goes back)."""
        started = time.monotonic()
        status = link.send(row)
        took = (time.monotonic() - started) * 1000
        name = EVENT_NAMES.get(row.type, str(int(row.type)))
        if delivered(status):
            self.db(self.outbox.ack, row.id, self.owner)
            LOG.info(
                "%s for %s to %s (%s): status 0x%04X, %.0f ms",
                name,
                row.uid,
                where(subscriber),
                link.family,
                status,
                took,
            )
            return
        wait = backoff(row.attempts + 1)
        self.db(self.outbox.retry, row.id, self.owner, f"status 0x{status:04X}")
        suffix = self._take(subscriber.ae_title)
        if suffix is not None:
            LOG.warning(
                "%s for %s to %s refused: status 0x%04X; retry in %g s%s",
                name,
                row.uid,
                where(subscriber),
                status,
                wait,
                suffix,
            )

    def _give_back(
        self, ae: str, rows: list[Delivery], reason: str, delay: float | None = None
    ) -> None:
        """Rows not sent: due again after their backoff (or ``delay``), one warning."""
        for row in rows:
            self.db(self.outbox.retry, row.id, self.owner, reason or "not sent", delay)
        if not reason or not rows:
            return
        wait = backoff(min(r.attempts for r in rows) + 1) if delay is None else delay
        with self._lock:
            self._resting[ae] = time.monotonic() + wait
        suffix = self._take(ae)
        if suffix is not None:
            LOG.warning(
                "%d event%s not delivered: %s; retry in %g s%s",
                len(rows),
                "" if len(rows) == 1 else "s",
                reason,
                wait,
                suffix,
            )

    def _take(self, ae: str) -> str | None:
        with self._lock:
            return self._throttles[ae].take()

    def _context(self, subscriber: Subscriber) -> ssl.SSLContext | None:
        if not subscriber.tls:
            return None
        with self._lock:
            if self._tls is None:
                c = self.config
                self._tls = client_context(c.tls_cert, c.tls_key, c.tls_ca)
            return self._tls


def _store_error(exc: BaseException) -> bool:
    """SQLite's or PostgreSQL's (psycopg, not imported here) errors, or an unusable store."""
    return isinstance(exc, (sqlite3.Error, OSError)) or type(exc).__module__.startswith("psycopg")


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    for fd in (read, write):
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_NONBLOCK)
    return read, write
