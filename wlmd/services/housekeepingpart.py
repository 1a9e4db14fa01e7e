"""Housekeeping's part of the catalogue: a helper child of the supervisor.

Why a helper child and not a systemd timer (or cron): wlmd stays one process
tree that starts, stops and is restarted as one (the supervisor restarts a
helper that dies, :mod:`wlmd.process.helpers`); it works the same with
``--single-process``, with ``--daemon`` on a system without systemd, and in a
container; the settings are the server's own (``--config``), not a second
copy in a unit file; and the MPPS entry policy needs a process that looks at
the state store every :data:`~wlmd.services.housekeeping.POLICY_POLL`
seconds anyway, which a timer cannot be. ``wlmctl purge --housekeeping``
runs the same code on demand.

The child runs when there is something to do: an MPPS entry policy other
than ``leave``, or ``--housekeeping-interval`` with ``--purge-after-days``
or MPPS (whose final steps ``--mpps-keep`` deletes). The first scheduled
run is at start (what fell due while wlmd was down), then every interval.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from wlmd.authoring.files import unwritable_reason
from wlmd.services.housekeeping import LOG, POLICY_POLL, Housekeeper
from wlmd.services.quietpart import QuietPart
from wlmd.services.stopsignal import StopSignal
from wlmd.services.upsdata import state_location
from wlmd.settings.config import Config
from wlmd.state.backends import open_backend
from wlmd.state.mpps import MppsRepository

SERVICE_NAME = "housekeeping"


def wanted(config: Config) -> bool:
    """Whether the housekeeping child has anything to do with this configuration."""
    if config.mpps_entry_policy != "leave":
        return True
    return bool(config.housekeeping_interval) and bool(
        config.purge_after_days or (config.mpps_ae_titles and config.mpps_keep)
    )


class HousekeepingPart(QuietPart):
    """The catalogue hooks: check the MPPS area at start-up, declare the helper."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def preload(self, progress: Callable[[int, int], None] | None = None) -> None:
        """``--mpps-area`` must be a storage area (with a lockfile), like ``--hl7-area``."""
        area = self.config.mpps_area
        if self.config.mpps_entry_policy == "leave" or not area:
            return
        path = os.path.join(self.config.data_files_path, area.rstrip(" "))
        if not os.path.isfile(os.path.join(path, "lockfile")):
            raise OSError(f"--mpps-area {area}: no storage area {path} (with a lockfile)")
        if (why := unwritable_reason(path)) is not None:
            raise OSError(f"--mpps-area {area}: storage area {path} is not writable: {why}")

    def helpers(self) -> list[tuple[str, Callable[[], int]]]:
        return [(SERVICE_NAME, lambda: run_housekeeping(self.config))]


def open_store(config: Config) -> MppsRepository | None:
    """This process's own connection to the MPPS store (None without MPPS)."""
    location = state_location(config) if config.mpps_ae_titles else None
    return MppsRepository(open_backend(location)) if location else None


def run_housekeeping(config: Config, clock: Callable[[], float] = time.monotonic) -> int:
    """The helper child's body: policy passes and scheduled runs until SIGTERM."""
    stop = StopSignal()
    keeper = Housekeeper(config, open_store(config))
    interval = float(config.housekeeping_interval)
    policy_on = keeper.entries is not None
    LOG.info(
        "housekeeping: MPPS entry policy %s%s, runs %s",
        config.mpps_entry_policy,
        f" on storage area {config.mpps_area}" if policy_on else "",
        f"every {interval:g} s" if interval else "off",
    )
    next_run = clock() if interval else None
    while not stop.requested:
        now = clock()
        try:
            if next_run is not None and now >= next_run:
                keeper.run()
                next_run = now + interval
            elif policy_on:
                keeper.apply_policy()
        except Exception as exc:  # the store unreachable: tried again, the child lives on
            LOG.error("housekeeping failed: %s", exc)
        wait = POLICY_POLL if policy_on else interval
        if next_run is not None:
            wait = min(wait, max(0.0, next_run - clock()))
        stop.wait(wait)
    return 0
