"""wlmd's command line: wlmscpfs's options, read the way DCMTK reads them.

The parser is derived from the table in :mod:`wlmd.options`; this module only
knows DCMTK's ``OFCommandLine`` rules, which we reproduce so that a wlmscpfs
command line (or unit file) can be pointed at wlmd unchanged:

* ``@file`` arguments are replaced by the file's words before anything else;
  quotes (double or single) keep spaces; a command file cannot name another.
* Options and the port may come in any order; an option's value is the next
  argument whatever it looks like; ``-5`` is a number, not an option.
* Rightmost wins among options setting the same Config field (see options.py).
* ``--help``/``--version``/``--arguments`` act once the line is syntactically
  valid, before option values are checked (``wlmscpfs -h 0`` prints the help).

Differences from wlmscpfs, on purpose: usage errors exit with status 2 (the
Unix convention; wlmscpfs uses 1) with one ``wlmd: ...`` line on stderr
(``<3>wlmd: ...`` when stderr is the systemd journal, so it is filed as an
error), and
integer values must be whole decimal numbers (wlmscpfs reads "5000x" as 5000).
"""

from __future__ import annotations

import importlib.metadata
import logging
import platform
import re
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wlmd import __version__, conffile, journal
from wlmd.config import Config
from wlmd.logsetup import LogConfigError, setup_logging
from wlmd.options import (
    BY_SPELLING,
    OPTIONS,
    PORT,
    PORT_HELP,
    Action,
    Choice,
    Int,
    Option,
    Param,
    UsageError,
    config_defaults,
)

__all__ = ["UsageError", "build_config", "main", "parse_args", "scan"]

PROG = "wlmd"

# A leading sign followed by digits is a (negative) number, not an option, as
# in DCMTK: `wlmscpfs -1` says "Invalid parameter value -1".
_NUMBER = re.compile(r"[+-][0-9]+(?:\.[0-9]+)?")


# --- @file expansion -----------------------------------------------------------


def split_command_file(text: str, name: str) -> list[str]:
    """Split a command file into arguments, as DCMTK does.

    Whitespace separates words; a double- or single-quoted string is one word
    with its spaces (and newlines) kept, even when empty. A quote also ends the
    word before it: ``ab"c d"e`` is three words, as in DCMTK. There are no
    escapes. Unlike DCMTK, which silently takes the rest of the file, an
    unterminated quote is an error: it is always a mistake.
    """
    words: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char in "\"'":
            end = text.find(char, i + 1)
            if end < 0:
                raise UsageError(f"unterminated quote in command file {name!r}")
            words.append(text[i + 1 : end])
            i = end + 1
        elif char.isspace():
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in "\"'":
                i += 1
            words.append(text[start:i])
    return words


def expand_command_files(argv: Sequence[str]) -> list[str]:
    """Replace every ``@file`` argument by the words of that file.

    Expansion happens before any other evaluation, so an ``@file`` may stand
    where an option value is expected (``-dfp @paths.txt``), as in DCMTK. A
    lone ``@`` is an ordinary argument.
    """
    expanded: list[str] = []
    for arg in argv:
        if not (arg.startswith("@") and len(arg) > 1):
            expanded.append(arg)
            continue
        name = arg[1:]
        try:
            with open(name, encoding="utf-8") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise UsageError(f"cannot read command file {name!r}: {reason}") from None
        for word in split_command_file(text, name):
            if word.startswith("@") and len(word) > 1:
                # DCMTK: "a command file cannot contain another command file".
                raise UsageError(f"command file {name!r} names another command file: {word!r}")
            expanded.append(word)
    return expanded


# --- scanning and building the Config --------------------------------------------


@dataclass
class CommandLine:
    """The syntactically checked command line, values not yet converted.

    ``occurrences`` keeps every option with its raw value in command-line
    order; ``arguments`` is the expanded argument list with options in their
    long spelling, for ``--arguments``.
    """

    occurrences: list[tuple[Option, str | None]] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    actions: set[Action] = field(default_factory=set)
    arguments: list[str] = field(default_factory=list)


def _is_option(arg: str) -> bool:
    return len(arg) > 1 and arg[0] in "+-" and not _NUMBER.fullmatch(arg)


def scan(argv: Sequence[str]) -> CommandLine:
    """Sort already-expanded arguments into options (with raw values) and parameters.

    Only the syntax is checked here: unknown options and options missing their
    value. Values are converted by :func:`build_config`.
    """
    line = CommandLine()
    args = iter(argv)
    for arg in args:
        if not _is_option(arg):
            line.params.append(arg)
            line.arguments.append(arg)
            continue
        option = BY_SPELLING.get(arg)
        if option is None:
            raise UsageError(f"unknown option: {arg}")
        line.arguments.append(option.long)
        value: str | None = None
        if option.param is not None:
            # As OFCommandLine: the next argument is the value, even "-x.dump".
            value = next(args, None)
            if value is None:
                raise UsageError(f"missing value for option {option.long}")
            line.arguments.append(value)
        if option.action is not None:
            line.actions.add(option.action)
        line.occurrences.append((option, value))
    return line


def _convert(param: Param, name: str, text: str) -> Any:
    try:
        return param.convert.convert(text)
    except ValueError as exc:
        raise UsageError(f"invalid value for {name}: {text!r} ({exc})") from None


def build_config(line: CommandLine) -> Config:
    """Turn a scanned command line into the one Config, or raise UsageError.

    For each Config field only the rightmost option setting it counts (and is
    validated), which is DCMTK's rule both for mutually exclusive options and
    for an option given twice. Errors are reported port first, then in table
    order, as wlmscpfs does.
    """
    occurrences = line.occurrences
    port_text = line.params[0] if line.params else None
    config_file = _rightmost(line, "config_file")
    if config_file is not None:
        # The file first, the command line over it (wlmd.conf(5)).
        path = _convert(_option("--config").param, "--config", config_file)  # type: ignore[arg-type]
        from_file = conffile.read(path)
        occurrences = conffile.merge(from_file.occurrences(), line.occurrences)
        if port_text is None:
            port_text = from_file.port
    if port_text is None:
        raise UsageError("missing parameter: port")
    if len(line.params) > 1:
        extra = " ".join(repr(p) for p in line.params[1:])
        raise UsageError(f"too many parameters: {extra}")
    port = _convert(PORT, "port", port_text)

    effective: dict[str, tuple[Option, str | None]] = {}
    for option, value in occurrences:
        if option.field is not None:
            effective[option.field] = (option, value)

    values: dict[str, Any] = {}
    for row in OPTIONS:
        if row.field is None or effective.get(row.field, (None,))[0] is not row:
            continue
        raw = effective[row.field][1]
        if row.param is not None and raw is not None:
            values[row.field] = _convert(row.param, row.long, raw)
        else:
            values[row.field] = row.const

    final = {**config_defaults(), **values}
    given = {option.long for option, _ in occurrences}
    for row in OPTIONS:
        if row.field not in values or effective[row.field][0] is not row:
            continue
        need = row.requires
        if need is not None and final[need.field] != need.value:
            raise UsageError(f"{row.long} only allowed with {need.spelled}")
        if row.conflicts_with is not None:
            clashing = [
                other.long
                for other in OPTIONS
                if other.field == row.conflicts_with and other.long in given
            ]
            if clashing:
                raise UsageError(f"{row.long} not allowed with {', '.join(clashing)}")
    config = Config(port=port, **values)
    from wlmd import tls  # checked now: a bad certificate stops start-up like a bad option

    try:
        tls.server_context(config)
    except tls.TlsError as exc:
        raise UsageError(str(exc)) from None
    if config.allowed_callers:
        from wlmd import callers  # late: it pulls in the worklist package

        try:  # checked now, so that a bad line stops start-up like a bad option
            callers.read(config.allowed_callers)
        except callers.CallerListError as exc:
            raise UsageError(f"bad --allowed-callers file: {exc}") from None
    return config


def _option(long: str) -> Option:
    return BY_SPELLING[long]


def _rightmost(line: CommandLine, field_name: str) -> str | None:
    """The raw value of the rightmost option setting ``field_name``, if any."""
    found = None
    for option, value in line.occurrences:
        if option.field == field_name:
            found = value
    return found


def parse_args(argv: Sequence[str]) -> Config:
    """Parse a wlmscpfs-style command line into a Config; raise UsageError if wrong.

    Pure apart from reading ``@files``, the ``--config`` file and checking that ``--log-config`` is
    readable. ``--help``/``--version``/``--arguments`` are :func:`main`'s
    business and are ignored here.
    """
    return build_config(scan(expand_command_files(argv)))


# --- help, version, arguments -----------------------------------------------------

_HELP_COLUMN = 33  # as DCMTK: help text starts in column 33 ...
_LONG_COLUMN = 10  # ... and long spellings in column 10
_WIDTH = 79


def _option_text(option: Option, defaults: dict[str, Any]) -> list[str]:
    """The help column of one option, before wrapping: one entry per paragraph."""
    param = option.param
    if param is None:
        text = option.help
        if option.field is not None and defaults.get(option.field) == option.const:
            text += " (default)"
        return [text]
    default = param.default_text
    if default is None:
        value = defaults.get(option.field or "")
        default = "" if value is None else str(value)
    default_note = f" (default: {default})" if default else ""
    synopsis = f"{param.label}: {param.convert.type_name}"
    converter = param.convert
    if isinstance(converter, Int) and converter.hi is not None:
        # DCMTK shows a range in the synopsis and the default after the help.
        return [f"{synopsis} ({converter.range_text})", option.help + default_note]
    lines = [synopsis + default_note]
    if isinstance(converter, Choice):
        lines.append(f"({converter.range_text})")
    return [*lines, option.help]


def _row(prefix: str, paragraphs: list[str]) -> list[str]:
    wrapped = [
        line
        for paragraph in paragraphs
        for line in textwrap.wrap(paragraph, _WIDTH - _HELP_COLUMN, break_on_hyphens=False)
    ]
    indent = " " * _HELP_COLUMN
    if len(prefix) > _HELP_COLUMN - 2:
        return [prefix] + [indent + line for line in wrapped]
    first, *rest = wrapped
    return [prefix.ljust(_HELP_COLUMN) + first] + [indent + line for line in rest]


def format_help() -> str:
    """The ``--help`` text, laid out like ``wlmscpfs --help`` and built from the table."""
    defaults = dict(config_defaults())
    lines = [
        f"{PROG} {__version__}: DICOM Basic Worklist Management SCP (based on data files)",
        f"usage: {PROG} [options] port",
        "",
        "parameters:",
        *_row("  port", [PORT_HELP]),
        "",
    ]
    groups: dict[str, list[Option]] = {}
    for option in OPTIONS:
        groups.setdefault(option.group, []).append(option)
    for group, members in groups.items():
        lines.append(f"{group}:")
        nested = any(option.subgroup for option in members)
        indent = 4 if nested else 2
        subgroup: str | None = None
        for option in members:
            if nested and option.subgroup != subgroup:
                subgroup = option.subgroup
                lines.append(f"  {subgroup}:")
            short = (option.short or "").ljust(_LONG_COLUMN - indent)
            prefix = " " * indent + short + option.long
            lines.extend(_row(prefix, _option_text(option, defaults)))
    lines += [
        "",
        "Arguments of the form @file are replaced by the words of that file.",
        "The rightmost of mutually exclusive options wins.",
    ]
    return "\n".join(lines) + "\n"


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def format_version() -> str:
    """The ``--version`` text: ours and that of what we depend on, for bug reports."""
    return (
        f"{PROG} {__version__}\n"
        f"python {platform.python_version()}\n"
        f"pydicom {_dist_version('pydicom')}\n"
        f"pynetdicom {_dist_version('pynetdicom')}\n"
    )


def format_arguments(line: CommandLine) -> str:
    """The ``--arguments`` line, as DCMTK prints it: options in their long spelling.

    DCMTK: ``calling 'wlmscpfs' with 4 arguments: '--arguments' '--max-pdu' '100' '104'``.
    """
    quoted = " ".join(f"'{arg}'" for arg in line.arguments)
    return f"calling '{PROG}' with {len(line.arguments)} arguments: {quoted}"


# --- entry point -----------------------------------------------------------------


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
    from wlmd.server import serve

    return serve(config)
