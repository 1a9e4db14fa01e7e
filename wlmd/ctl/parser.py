"""``wlmctl``'s command line: the subcommands, their options, and argparse's errors as wlmctl's.

Kept apart from the commands (:mod:`wlmd.ctl.main`) so that the man page
test (tests/packaging/test_manpages.py) and the flag tests read the parser
without the commands, and each module stays small.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from wlmd import __version__
from wlmd.authoring import compose
from wlmd.authoring.locking import DEFAULT_LOCK_TIMEOUT
from wlmd.ctl import flags, inputs

USAGE = 2
DEFAULT_DATA_FILES_PATH = "/var/lib/wlmd/worklist"
DEFAULT_AREA = "WLMD"


class _Parser(argparse.ArgumentParser):
    """argparse with wlmctl's one-line usage errors and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"wlmctl: {message} (see {self.prog} --help)\n")
        raise SystemExit(USAGE)


def _common() -> _Parser:
    # SUPPRESS: given before or after the subcommand, the option is not reset.
    common = _Parser(add_help=False)
    common.add_argument(
        "-dfp",
        "--data-files-path",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help=f"the storage areas' directory (default {DEFAULT_DATA_FILES_PATH})",
    )
    common.add_argument(
        "-a",
        "--area",
        metavar="AE",
        default=argparse.SUPPRESS,
        help=f"storage area (called AE title) (default {DEFAULT_AREA})",
    )
    common.add_argument(
        "--lock-timeout",
        metavar="SECONDS",
        type=_seconds,
        default=argparse.SUPPRESS,
        help=f"wait at most this long for the area's lock (default {DEFAULT_LOCK_TIMEOUT:g}; "
        "0: wait forever)",
    )
    return common


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog="wlmctl",
        description="Create, check, list and remove DICOM worklist entries (.wl files) in a "
        "wlmd/wlmscpfs storage area, by the lockfile protocol.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"wlmctl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    add = sub.add_parser(
        "add", parents=[common], help="create or replace entries (JSON, dump, flags)"
    )
    add.add_argument("files", nargs="*", metavar="FILE", help="DICOM JSON, dump text, DICOM; -")
    _input_options(add)
    add.add_argument("--json", action="store_true", help="print the outcome as JSON")
    flags.add_arguments(add)

    validate = sub.add_parser(
        "validate", parents=[common], help="what the server would say about each file"
    )
    validate.add_argument("files", nargs="*", metavar="FILE", help="default: the whole area")
    _input_options(validate)
    validate.add_argument("-q", "--quiet", action="store_true", help="print problems only")

    listing = sub.add_parser("list", parents=[common], help="the area's entries as a table")
    _selection_options(listing)
    listing.add_argument("--json", action="store_true", help="a JSON array instead")
    listing.add_argument("--all", action="store_true", help="also files the server skips")

    show = sub.add_parser("show", parents=[common], help="one entry's attributes")
    show.add_argument("name", metavar="FILE.wl")
    show.add_argument("--json", action="store_true", help="as DICOM JSON (PS3.18 F.2)")

    rm = sub.add_parser("rm", parents=[common], help="remove entries by name or selection")
    rm.add_argument("names", nargs="*", metavar="FILE.wl")
    _selection_options(rm)

    purge = sub.add_parser("purge", parents=[common], help="remove entries scheduled before")
    when = purge.add_mutually_exclusive_group(required=True)
    when.add_argument("--before", metavar="DATE", help="SPS start date before DATE")
    when.add_argument(
        "--older-than", metavar="DAYS", type=int, help="SPS start date more than DAYS ago"
    )
    when.add_argument(
        "--housekeeping",
        action="store_true",
        help="run the server's housekeeping once (MPPS entry policy, purge-after-days, mpps-keep)",
    )
    purge.add_argument(
        "--config",
        metavar="FILE",
        default="/etc/wlmd/wlmd.conf",
        help="with --housekeeping: the server's settings (default /etc/wlmd/wlmd.conf)",
    )

    imp = sub.add_parser("import", parents=[common], help="add every file of a directory")
    imp.add_argument("directory", metavar="DIR")
    _input_options(imp)
    imp.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return parser


def _input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=inputs.FORMATS, default="auto", help="input format (default: guess)"
    )
    gen = parser.add_argument_group("generated values")
    gen.add_argument(
        "--no-generate",
        action="append",
        default=[],
        choices=compose.GENERATED_KEYWORDS,
        metavar="KEYWORD",
        help="never generate this attribute: " + ", ".join(compose.GENERATED_KEYWORDS),
    )
    gen.add_argument("--uid-root", metavar="ROOT", help="root of generated UIDs (default 2.25)")
    gen.add_argument("--id-prefix", metavar="TEXT", default="", help="prefix of generated IDs")


def _selection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--patient-id", metavar="ID")
    parser.add_argument("--accession", metavar="NUMBER")
    parser.add_argument("--modality", metavar="MODALITY")
    parser.add_argument("--station", metavar="AE", help="ScheduledStationAETitle")
    parser.add_argument(
        "--date", metavar="RANGE", help="SPS start date: DATE, DATE..DATE, today, ..."
    )
