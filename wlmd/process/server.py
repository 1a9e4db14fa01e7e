"""Entry point from the command line to serving: open the store, listen, serve.

The listening and process model live in :mod:`wlmd.process.supervisor`; this module
only wires the configuration to it, and turns start-up failures (port in use,
data path missing) into one clear line.
"""

from __future__ import annotations

import logging
import os

from wlmd.process import systemd
from wlmd.process.logsetup import setup_logging
from wlmd.settings.config import Config

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
    """Run wlmd until it is told to stop; returns the process exit status.

    The order matters to an operator: everything that can fail (pid file
    taken, data path missing, port in use, libwrap missing) fails before
    detaching, so ``wlmd --daemon`` reports it on the terminal with status 1;
    readiness is announced only once the pid file names the final process.
    """
    from wlmd.process.access import AccessControlUnavailable
    from wlmd.process.supervisor import Supervisor

    pid_file = systemd.PidFile(config.pid_file) if config.pid_file else None
    try:
        check_data_files_path(config)
        if pid_file is not None:
            pid_file.acquire()
        supervisor = Supervisor(config)
        supervisor.listen()
        if config.daemon:
            keep = supervisor.file_descriptors()
            if pid_file is not None and pid_file.fd is not None:
                keep.append(pid_file.fd)
            systemd.daemonize(keep)
            supervisor.pid = os.getpid()
            # python-daemon closed the log handlers' descriptors; stderr is /dev/null.
            setup_logging(config, detached=True)
            LOG.info("running in the background as pid %d", supervisor.pid)
        supervisor.load()
        if pid_file is not None:
            pid_file.write(os.getpid())
    except (
        StartupError,
        AccessControlUnavailable,
        systemd.AlreadyRunning,
        systemd.PidFileError,
        OSError,
    ) as exc:
        LOG.critical("cannot start: %s", exc)
        if pid_file is not None:
            pid_file.release()
        return 1
    supervisor.install_signal_handlers()
    systemd.notify(f"READY=1\nSTATUS=listening on {supervisor.listening_on()}")
    try:
        return supervisor.run()
    finally:
        if pid_file is not None:
            pid_file.release()
