"""The building blocks of the options table: value converters and the row types.

:mod:`wlmd.settings.options` is the table itself; these are what its rows are
made of (an :class:`Option` with its :class:`Param` converter, mutual
exclusion by Config field, ``requires`` / ``conflicts_with`` rules), kept apart
so the table reads as a table.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import re
from dataclasses import dataclass
from typing import Any


class UsageError(Exception):
    """A command-line mistake; ``str()`` is the one-line message shown to the user.

    Defined here rather than in :mod:`wlmd.cli` so that the value converters in
    this table can raise it without importing the parser.
    """


# --- value converters --------------------------------------------------------
#
# Each converter turns one argument string into a Config value or raises
# ValueError whose text says what was expected; the parser wraps that into
# "invalid value for --long-name: 'text' (expected ...)".

# Unbounded integer options (timeouts, sleeps, counts) are capped at the C
# ``int`` range: wlmscpfs stores them in C integers too, and Python's
# time.sleep()/socket timeouts overflow well before Python ints do.
INT_MAX = 2**31 - 1

_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


@dataclass(frozen=True)
class Int:
    """A decimal integer in ``lo..hi`` (``hi`` None: at most :data:`INT_MAX`)."""

    lo: int
    hi: int | None = None
    type_name: str = "integer"

    @property
    def range_text(self) -> str:
        """The range as shown in ``--help`` and in error messages."""
        return f"{self.lo}..{self.hi}" if self.hi is not None else f">= {self.lo}"

    def convert(self, text: str) -> int:
        # Stricter than DCMTK's sscanf (which takes "5000x" as 5000): a typo in
        # a numeric option should stop the server, not be half-read.
        if not _INTEGER.fullmatch(text):
            raise ValueError(f"expected an integer {self.range_text}")
        value = int(text)
        hi = self.hi if self.hi is not None else INT_MAX
        if not self.lo <= value <= hi:
            raise ValueError(
                f"expected {self.lo}..{hi}" if value > hi else f"expected {self.range_text}"
            )
        return value


@dataclass(frozen=True)
class Str:
    """Any string, including the empty one (wlmscpfs accepts ``-rff ""`` too)."""

    type_name: str = "string"
    range_text: str = ""

    def convert(self, text: str) -> str:
        return text


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of words, matched case-insensitively as DCMTK's oflog does."""

    choices: tuple[str, ...]
    type_name: str = "string constant"

    @property
    def range_text(self) -> str:
        return ", ".join(self.choices)

    def convert(self, text: str) -> str:
        word = text.strip().lower()
        if word not in self.choices:
            raise ValueError(f"expected one of {self.range_text}")
        return word


@dataclass(frozen=True)
class ReadableFile:
    """A path that must name a readable regular file when the command line is read.

    Checked at start-up rather than when first used so that a typo in the
    unit file fails the start with a clear message (wlmscpfs: "Specified
    --log-config file does not exist").
    """

    type_name: str = "string"
    range_text: str = ""

    def convert(self, text: str) -> str:
        if not os.path.exists(text):
            raise ValueError("no such file")
        if not os.path.isfile(text):
            raise ValueError("not a regular file")
        try:
            with open(text, "rb"):
                pass
        except OSError as exc:
            raise ValueError(exc.strerror or "cannot read file") from None
        return text


@dataclass(frozen=True)
class AeTitles:
    """Comma-separated AE titles (PS3.5 6.2: 1-16 characters, no backslash or control)."""

    type_name: str = "string"
    range_text: str = ""

    def convert(self, text: str) -> tuple[str, ...]:
        titles = tuple(t.strip(" ") for t in text.split(","))
        for title in titles:
            if not title or len(title) > 16 or "\\" in title or not title.isprintable():
                raise ValueError(f"{title!r} is not an AE title (1-16 characters)")
        return titles


_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\.?$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")


@dataclass(frozen=True)
class Address:
    """A listen address: "" (all interfaces), an IPv4/IPv6 literal or a host name.

    Only the syntax is checked here; whether it resolves and can be bound is
    the server's business at bind time. ``[::1]`` is accepted and unbracketed
    because that is how people write IPv6 addresses next to ports.
    """

    type_name: str = "string"
    range_text: str = ""

    def convert(self, text: str) -> str:
        if text == "":
            return text
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        try:
            ipaddress.ip_address(text)
        except ValueError:
            # Dotted all-numeric strings are not host names ("300.1.1.1").
            if _HOSTNAME.fullmatch(text) and not re.fullmatch(r"[0-9.]+", text):
                return text
            raise ValueError("expected an IPv4/IPv6 address or a host name") from None
        return text


@dataclass(frozen=True)
class StationDefaults:
    """``MODALITY=AE,...``: the scheduled station AE title per modality (HL7 intake)."""

    type_name: str = "string"
    range_text: str = ""

    def convert(self, text: str) -> tuple[tuple[str, str], ...]:
        pairs = []
        for item in filter(None, (t.strip() for t in text.split(","))):
            modality, eq, title = (p.strip() for p in item.partition("="))
            if not eq or not modality or not 0 < len(title) <= 16 or "\\" in title:
                raise ValueError(f"{item!r} is not MODALITY=AE-TITLE")
            pairs.append((modality.upper(), title))
        return tuple(pairs)


Converter = Int | Str | Choice | ReadableFile | Address | AeTitles | StationDefaults


# --- the table ---------------------------------------------------------------


class Action(enum.Enum):
    """Options that do something instead of setting a Config field."""

    HELP = "help"
    VERSION = "version"
    ARGUMENTS = "arguments"


@dataclass(frozen=True)
class Param:
    """The value an option takes, written as DCMTK does: ``[p]ath: string``.

    ``label`` names the value with its one-letter abbreviation in brackets; the
    help line refers to it by that letter ("path to store request files to",
    "sleep s seconds ...").
    """

    label: str
    convert: Converter
    # Shown as "(default: ...)" in --help; None: derived from the Config
    # field's default, "" : don't show one.
    default_text: str | None = None


@dataclass(frozen=True)
class Requirement:
    """``field`` must end up equal to ``value``; ``spelled`` names that option."""

    field: str
    value: object
    spelled: str


@dataclass(frozen=True)
class Option:
    """One row of the table: spellings, what it sets, help, place in ``--help``."""

    long: str
    short: str | None
    help: str
    group: str = ""
    subgroup: str | None = None
    field: str | None = None  # Config field set (None for actions)
    const: object = None  # value a flag sets; unused when param is given
    param: Param | None = None
    action: Action | None = None
    requires: Requirement | None = None
    conflicts_with: str | None = None  # a Config field no option may set alongside

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.short, self.long) if self.short else (self.long,)


# Row builders, so that the table below reads as a table.


def flag(short: str | None, long: str, field: str, const: object, help: str) -> Option:
    """An option without a value that sets ``field`` to ``const``."""
    return Option(long, short, help, field=field, const=const)


def value(
    short: str | None, long: str, field: str, param: Param, help: str, **rules: Any
) -> Option:
    """An option that sets ``field`` from the next argument (``rules``: requires/conflicts_with)."""
    return Option(long, short, help, field=field, param=param, **rules)


def act(short: str | None, long: str, action: Action, help: str) -> Option:
    """An option that makes wlmd do something (print help, ...) rather than set a field."""
    return Option(long, short, help, action=action)


def section(group: str, subgroup: str | None, *rows: Option) -> tuple[Option, ...]:
    """Place rows under a ``--help`` heading (and sub-heading, as wlmscpfs has)."""
    return tuple(dataclasses.replace(row, group=group, subgroup=subgroup) for row in rows)
