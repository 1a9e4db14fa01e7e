"""``wlmctl purge --housekeeping``: the server's housekeeping once, on demand.

Reads the server's own settings (``--config``, by default the packaged
``/etc/wlmd/wlmd.conf``) so that what runs now is exactly what the
housekeeping child of a running wlmd runs every ``housekeeping-interval``
(:class:`wlmd.services.housekeeping.Housekeeper`): the MPPS entry policy's
pending changes, entries past ``purge-after-days``, final MPPS past
``mpps-keep``. Running it beside the server is safe: every file change is
made under the area's write lock and is idempotent (a change the server made
meanwhile is found done). The action lines and the counts go to stderr.
"""

from __future__ import annotations

import logging
import os
import sys

from wlmd.settings.commandline import parse_args
from wlmd.settings.optiontypes import UsageError

DEFAULT_CONFIG = "/etc/wlmd/wlmd.conf"
#: The packaged unit's StateDirectory=, where the default state store lives.
PACKAGED_STATE_DIRECTORY = "/var/lib/wlmd/state"


class HousekeepingSettingsError(Exception):
    """The configuration file cannot be used (one line: wlmd's own reason)."""


def run(config_file: str) -> int:
    """Run housekeeping once; 0 when nothing failed, 1 otherwise."""
    from wlmd.services.housekeeping import LOG, Housekeeper
    from wlmd.services.housekeepingpart import open_store

    os.environ.setdefault("STATE_DIRECTORY", PACKAGED_STATE_DIRECTORY)
    try:
        # the port is not used; given so a file without one is accepted
        config = parse_args(["--config", config_file, "104"])
    except UsageError as exc:
        raise HousekeepingSettingsError(str(exc)) from None
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("wlmctl: %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False
    store = open_store(config)
    try:
        counts = Housekeeper(config, store).run()
    finally:
        if store is not None:
            store.close()
        LOG.removeHandler(handler)
    return 1 if counts.failed else 0
