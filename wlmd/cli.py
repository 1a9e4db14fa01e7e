"""wlmd's entry point: read the command line, set up logging, serve.

The command line is read by :mod:`wlmd.settings.commandline` (wlmscpfs's
options, DCMTK's rules) and its texts come from :mod:`wlmd.settings.helptext`;
serving is :func:`wlmd.process.server.serve`'s.

Differences from wlmscpfs, on purpose: usage errors exit with status 2 (the
Unix convention; wlmscpfs uses 1) with one ``wlmd: ...`` line on stderr
(``<3>wlmd: ...`` when stderr is the systemd journal, so it is filed as an
error).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from wlmd.process import journal
from wlmd.process.logsetup import LogConfigError, setup_logging
from wlmd.settings.commandline import build_config, expand_command_files, scan
from wlmd.settings.helptext import PROG, format_arguments, format_help, format_version
from wlmd.settings.optiontypes import Action, UsageError

__all__ = ["main"]


def _fail(message: str) -> int:
    # One line, always: a systemd journal or a wrapper script sees the reason
    # in the first line and never a traceback. In the journal it is an error
    # (priority 3), so `journalctl -p err` and monitoring see it.
    journal.stderr_line(f"{PROG}: {message}", logging.ERROR)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run wlmd with a wlmscpfs-style command line; return the exit status.

    Exit status 2 for usage errors (including a bad ``--log-config`` file),
    0 after ``--help``/``--version``, else whatever the server returns.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        # As wlmscpfs: no arguments at all print the usage and exit 0.
        sys.stdout.write(format_help())
        return 0
    try:
        line = scan(expand_command_files(args))
        if Action.ARGUMENTS in line.actions:
            print(format_arguments(line), file=sys.stderr)
        if Action.HELP in line.actions:
            sys.stdout.write(format_help())
            return 0
        if Action.VERSION in line.actions:
            sys.stdout.write(format_version())
            return 0
        config = build_config(line)
        setup_logging(config)
    except (UsageError, LogConfigError) as exc:
        return _fail(str(exc))

    # Imported late: the server pulls in pynetdicom, which --help and usage
    # errors should not pay for.
    from wlmd.process.server import serve

    return serve(config)
