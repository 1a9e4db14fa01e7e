"""Reading wlmd's command line: wlmscpfs's options, the way DCMTK reads them.

The parser is derived from the table in :mod:`wlmd.settings.options`; this module only
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

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from wlmd.settings import conffile
from wlmd.settings.config import Config
from wlmd.settings.options import BY_SPELLING, OPTIONS, PORT, config_defaults
from wlmd.settings.optiontypes import Action, Option, Param, UsageError

__all__ = ["CommandLine", "UsageError", "build_config", "parse_args", "scan"]

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
    from wlmd.association import (
        tls,  # checked now: a bad certificate stops start-up like a bad option
    )

    try:
        tls.server_context(config)
    except tls.TlsError as exc:
        raise UsageError(str(exc)) from None
    if config.ups_ae_titles or config.mpps_ae_titles:
        _check_ups(config)
    _check_mpps_policy(config)
    if config.request_filter:
        from wlmd.services import requestfilter

        try:  # loaded now: a broken filter stops start-up like a bad option
            requestfilter.load(config.request_filter)
        except requestfilter.RequestFilterError as exc:
            raise UsageError(f"bad --request-filter: {exc}") from None
    from wlmd.api import settings as api_settings

    try:  # checked now: an exposed API without protection stops start-up
        api_settings.check(config)
    except api_settings.ApiSettingsError as exc:
        raise UsageError(str(exc)) from None
    from wlmd.services import hl7intake

    try:  # loaded now: a bad HL7 certificate or mapping stops start-up like a bad option
        hl7intake.check(config)
    except hl7intake.Hl7SettingsError as exc:
        raise UsageError(str(exc)) from None
    from wlmd.services import hl7forward

    try:
        hl7forward.destination(config)
    except hl7forward.ForwardSettingsError as exc:
        raise UsageError(str(exc)) from None
    if config.allowed_callers:
        from wlmd.services import callers  # late: it pulls in the worklist package

        try:  # checked now, so that a bad line stops start-up like a bad option
            callers.read(config.allowed_callers)
        except callers.CallerListError as exc:
            raise UsageError(f"bad --allowed-callers file: {exc}") from None
    return config


def _check_ups(config: Config) -> None:
    """UPS/MPPS settings that stop start-up like a bad option: no state store, a bad
    subscriber line."""
    import os

    if not config.state_store and not os.environ.get("STATE_DIRECTORY"):
        which = "--ups-ae-title" if config.ups_ae_titles else "--mpps-ae-title"
        raise UsageError(f"{which} needs --state-store (or $STATE_DIRECTORY, as systemd sets it)")
    if config.ups_subscribers:
        from wlmd.services import upssubscribers

        try:
            upssubscribers.read(config.ups_subscribers)
        except upssubscribers.SubscriberTableError as exc:
            raise UsageError(f"bad --ups-subscribers file: {exc}") from None


def _check_mpps_policy(config: Config) -> None:
    """The MPPS entry policy's settings (wlmd.mpps.policy): what it needs, and
    --mpps-keep not shorter than the removal delay (the removal needs the MPPS)."""
    policy = config.mpps_entry_policy
    if policy == "leave":
        return
    if not config.mpps_ae_titles:
        raise UsageError(f"--mpps-entry-policy {policy} needs --mpps-ae-title")
    if not config.mpps_area:
        raise UsageError(f"--mpps-entry-policy {policy} needs --mpps-area")
    removes = policy in ("remove", "hide-remove")
    if removes and config.mpps_keep and config.mpps_keep < config.mpps_remove_delay:
        raise UsageError(
            f"--mpps-keep {config.mpps_keep} is shorter than --mpps-remove-delay "
            f"{config.mpps_remove_delay}: an MPPS would be deleted before its entry is removed"
        )


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
