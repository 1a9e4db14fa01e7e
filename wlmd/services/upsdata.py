"""UPS's part of the catalogue: the state store, its event sender, and the service factory.

Nothing is kept in the supervisor's memory (the state is in the database);
the supervisor opens the store once before READY=1 so that a bad
``--state-store`` (an unwritable directory, a refused PostgreSQL login, a
schema from a newer wlmd) stops start-up with one line, then closes it:
every worker and the event sender open their own connection on first use,
never one inherited across ``fork()`` (:mod:`wlmd.state.backends`).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable

from wlmd.association.dimse import Service
from wlmd.association.report import AssociationLog
from wlmd.services import upssubscribers
from wlmd.services.quietpart import QuietPart
from wlmd.services.ups import UpsService
from wlmd.settings.config import Config
from wlmd.state import open_store
from wlmd.state.repository import Policy, UpsRepository

SERVICE_NAME = "unified procedure step"


def state_location(config: Config) -> str | None:
    """``--state-store``, else ``$STATE_DIRECTORY/wlmd.db`` (systemd's StateDirectory=)."""
    if config.state_store:
        return config.state_store
    directory = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    return os.path.join(directory, "wlmd.db") if directory else None


class UpsData(QuietPart):
    """The hooks of :class:`wlmd.process.hooks.ServiceData` for UPS."""

    def __init__(self, config: Config) -> None:
        location = state_location(config)
        if location is None:  # checked with the command line; kept for direct use
            raise ValueError("--ups-ae-title needs --state-store")
        self.config = config
        self.location = location
        self.subscribers = (
            upssubscribers.read(config.ups_subscribers)
            if config.ups_subscribers
            else upssubscribers.EMPTY
        )
        self.store: UpsRepository = open_store(
            location, policy=Policy(known_ae=self.subscribers.known)
        )

    def service(self, log: AssociationLog) -> Service:
        """The UPS service for one association (the router's factory)."""
        return UpsService(lambda: self.store, log).service()

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Open the store once (schema created or migrated), then close it before forking."""
        self.store.check()
        self.store.close()

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        """The event sender, with a byte of memory shared by its incarnations (an
        anonymous shared mapping, inherited across fork): set once the SCP's start
        was announced, so a sender restarted after a crash does not announce it again."""
        from wlmd.services.upsevents import run_event_sender

        announced = mmap.mmap(-1, 1)
        return [("ups event sender", lambda: run_event_sender(self, announced))]
