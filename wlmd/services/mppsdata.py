"""MPPS's part of the catalogue: its repository on the state store, and the service factory.

The store is the UPS one (``--state-store``, or ``$STATE_DIRECTORY/wlmd.db``);
the supervisor opens it once before READY=1 (a bad location stops start-up,
the schema is migrated), then each worker opens its own connection.
"""

from __future__ import annotations

from collections.abc import Callable

from wlmd.association.dimse import Service
from wlmd.association.report import AssociationLog
from wlmd.services.mpps import MppsService
from wlmd.services.quietpart import QuietPart
from wlmd.services.upsdata import state_location
from wlmd.settings.config import Config
from wlmd.state.backends import open_backend
from wlmd.state.mpps import MppsRepository

SERVICE_NAME = "modality performed procedure step"


class MppsData(QuietPart):
    """The hooks of :class:`wlmd.process.hooks.ServiceData` for MPPS."""

    def __init__(self, config: Config) -> None:
        location = state_location(config)
        if location is None:  # checked with the command line
            raise ValueError("--mpps-ae-title needs --state-store")
        self.store = MppsRepository(open_backend(location))

    def service(self, log: AssociationLog) -> Service:
        return MppsService(lambda: self.store, log).service()

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """Open the store once (schema migrated; StoreError stops start-up), then close it."""
        with self.store.backend.transaction(write=False) as tx:
            tx.execute("SELECT 1")
        self.store.close()
