"""The ``--help``, ``--version`` and ``--arguments`` texts, laid out as DCMTK's tools lay them out.

The help is generated from the options table (:mod:`wlmd.settings.options`),
so it cannot miss an option; its layout (groups, columns, wrapped text)
follows wlmscpfs's, so that a site's notes about wlmscpfs still read right.
"""

from __future__ import annotations

import importlib.metadata
import platform
import textwrap
from typing import Any

from wlmd import __version__
from wlmd.settings.commandline import CommandLine
from wlmd.settings.options import OPTIONS, PORT_HELP, config_defaults
from wlmd.settings.optiontypes import Choice, Int, Option

PROG = "wlmd"


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
