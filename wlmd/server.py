"""Entry point from the command line to serving: open the store, listen, serve.

The listening and process model live in :mod:`wlmd.supervisor`; this module
only wires the configuration to it, and turns start-up failures (port in use,
data path missing) into one clear line.
"""

from __future__ import annotations

import logging
import os

from wlmd.config import Config

LOG = logging.getLogger("wlmd")


class StartupError(Exception):
    """Start-up cannot continue; the message is one line for the operator."""


def check_data_files_path(config: Config) -> None:
    """The data files path must be a readable directory (as wlmscpfs checks)."""
    path = config.data_files_path
    if not os.path.isdir(path):
        raise StartupError(f"data files path {path!r} is not a directory (-dfp)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise StartupError(f"data files path {path!r} is not readable (-dfp)")
    if config.request_file_path and not os.path.isdir(config.request_file_path):
        raise StartupError(
            f"request file path {config.request_file_path!r} is not a directory (-rfp)"
        )


def serve(config: Config) -> int:
    """Run wlmd until it is told to stop; returns the process exit status."""
    from wlmd.access import AccessControlUnavailable
    from wlmd.supervisor import Supervisor

    try:
        check_data_files_path(config)
        supervisor = Supervisor(config)
        supervisor.listen()
    except (StartupError, AccessControlUnavailable, OSError) as exc:
        LOG.critical("cannot start: %s", exc)
        return 1
    return supervisor.run()
