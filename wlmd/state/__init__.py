"""The state store: UPS instances, subscriptions and the event outbox, durably.

One interface (:class:`~wlmd.state.repository.UpsRepository`), two backends
(``backends``): embedded SQLite by default, PostgreSQL for several nodes on
one database. ``schema`` versions the tables; ``outbox`` is the event
sender's side. No network code: the UPS service and the event sender use it.
"""

from __future__ import annotations

from pathlib import Path

from wlmd.state.backends import Tracer, open_backend
from wlmd.state.repository import Policy, UpsRepository

#: Where the Debian package's unit keeps state (StateDirectory=wlmd).
DEFAULT_PATH = Path("/var/lib/wlmd/state/wlmd.db")


def open_store(
    location: str | Path = DEFAULT_PATH, policy: Policy | None = None, tracer: Tracer | None = None
) -> UpsRepository:
    """A store on an SQLite file path or a PostgreSQL URL; nothing is opened yet."""
    return UpsRepository(open_backend(location, tracer), policy=policy)
