"""Every wlmd command-line option, declared once.

This table is the single source of truth for the command line (as gunicorn's
``config.py`` is for gunicorn): :mod:`wlmd.cli` derives the parser, ``--help``
and ``--arguments`` from it, and tests check it against ``wlmscpfs --help``.
Adding an option means adding one :class:`Option` row here and, if it needs
new state, one field in :class:`wlmd.config.Config`.

Semantics are DCMTK's ``OFCommandLine`` ones, so that every wlmscpfs command
line means the same to wlmd:

* Options that set the same :class:`~wlmd.config.Config` field form a mutually
  exclusive group (``-cs0/-cs1/-csk``, ``-q/-v/-d/-ll``, ``-s/--fork``, ...);
  the rightmost one wins. The same holds for an option given twice, and, as
  in DCMTK, only that rightmost occurrence is validated.
* An option that takes a value takes the *next* argument, whatever it looks
  like (``-rff -x.dump`` sets the format to ``-x.dump``, as wlmscpfs does).
* Cross-option rules (``+cl`` only with ``+xd``; ``-lc`` not with the log
  level options) are declared on the row (``requires`` / ``conflicts_with``).
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from wlmd.config import Config, PreferredSyntax, ProcessModel, ReturnCharset


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


Converter = Int | Str | Choice | ReadableFile | Address


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


LOG_LEVELS = ("fatal", "error", "warn", "info", "debug", "trace")

EXTENSIONS = "wlmd extensions (not in wlmscpfs)"
SERVICE = "service options (wlmd extensions)"

# Order, headings and wording follow `wlmscpfs --help` (DCMTK 3.6.7), so that
# --help reads the same to someone who knows wlmscpfs. Options setting the same
# field are one mutually exclusive group: the rightmost wins.
# fmt: off
OPTIONS: tuple[Option, ...] = (
    *section("general options", None,
        act("-h", "--help", Action.HELP, "print this help text and exit"),
        act(None, "--version", Action.VERSION, "print version information and exit"),
        act(None, "--arguments", Action.ARGUMENTS, "print expanded command line arguments"),
        flag("-q", "--quiet", "log_level", "fatal", "quiet mode, print no warnings and errors"),
        flag("-v", "--verbose", "log_level", "info", "verbose mode, print processing details"),
        flag("-d", "--debug", "log_level", "debug", "debug mode, print debug information"),
        value("-ll", "--log-level", "log_level",
              Param("[l]evel", Choice(LOG_LEVELS), default_text=""),
              "use level l for the logger"),
        value("-lc", "--log-config", "log_config", Param("[f]ilename", ReadableFile()),
              "use config file f for the logger (Python logging fileConfig INI)",
              conflicts_with="log_level"),  # as wlmscpfs: the file decides the levels
    ),
    *section("multi-process options", None,
        flag("-s", "--single-process", "process_model", ProcessModel.SINGLE,
             "single process mode"),
        flag(None, "--fork", "process_model", ProcessModel.FORK,
             "fork child process for each association"),
    ),
    *section("input options", "general",
        value("-dfp", "--data-files-path", "data_files_path", Param("[p]ath", Str()),
              "path to worklist data files"),
    ),
    *section("input options", "handling of worklist files",
        flag("-efr", "--enable-file-reject", "enable_file_reject", True,
             "enable rejection of incomplete worklist files"),
        flag("-dfr", "--disable-file-reject", "enable_file_reject", False,
             "disable rejection of incomplete worklist files"),
    ),
    *section("processing options", "returned character set",
        flag("-cs0", "--return-no-char-set", "return_charset", ReturnCharset.NONE,
             "return no specific character set"),
        flag("-cs1", "--return-iso-ir-100", "return_charset", ReturnCharset.ISO_IR_100,
             "return specific character set ISO IR 100"),
        flag("-csk", "--keep-char-set", "return_charset", ReturnCharset.KEEP,
             "return character set provided in file"),
    ),
    *section("processing options", "other processing options",
        flag("-nse", "--no-sq-expansion", "sq_expansion", False,
             "disable expansion of empty sequences in C-FIND request messages"),
    ),
    *section("network options", "preferred network transfer syntaxes",
        flag("+x=", "--prefer-uncompr", "preferred_syntax", PreferredSyntax.UNCOMPRESSED,
             "prefer explicit VR local byte order"),
        flag("+xe", "--prefer-little", "preferred_syntax", PreferredSyntax.LITTLE,
             "prefer explicit VR little endian TS"),
        flag("+xb", "--prefer-big", "preferred_syntax", PreferredSyntax.BIG,
             "prefer explicit VR big endian TS"),
        flag("+xd", "--prefer-deflated", "preferred_syntax", PreferredSyntax.DEFLATED,
             "prefer deflated explicit VR little endian TS"),
        flag("+xi", "--implicit", "preferred_syntax", PreferredSyntax.IMPLICIT,
             "accept implicit VR little endian TS only"),
    ),
    *section("network options", "network host access control (tcp wrapper)",
        flag("-ac", "--access-full", "access_control", False,
             "accept connections from any host"),
        flag("+ac", "--access-control", "access_control", True,
             "enforce host access control rules"),
    ),
    *section("network options", "post-1993 value representations",
        flag("+u", "--enable-new-vr", "enable_new_vr", True,
             "enable support for new VRs (UN/UT)"),
        flag("-u", "--disable-new-vr", "enable_new_vr", False,
             "disable support for new VRs, convert to OB"),
    ),
    *section("network options", "deflate compression level (only with --prefer-deflated)",
        value("+cl", "--compression-level", "compression_level", Param("[l]evel", Int(0, 9)),
              "0=uncompressed, 1=fastest, 9=best compression",
              # as wlmscpfs: "--compression-level only allowed with --prefer-deflated"
              requires=Requirement("preferred_syntax", PreferredSyntax.DEFLATED,
                                   "--prefer-deflated")),
    ),
    *section("network options", "other network options",
        value("-ta", "--acse-timeout", "acse_timeout", Param("[s]econds", Int(1)),
              "timeout for ACSE messages"),
        value("-td", "--dimse-timeout", "dimse_timeout",
              Param("[s]econds", Int(1), default_text="unlimited"),
              "timeout for DIMSE messages"),
        value(None, "--max-associations", "max_associations", Param("[a]ssocs", Int(1)),
              "limit maximum number of parallel associations"),
        flag(None, "--refuse", "refuse", True, "refuse association"),
        flag(None, "--reject", "reject", True,
             "reject association if no implementation class UID"),
        flag(None, "--no-fail", "no_fail", True, "don't fail on an invalid query"),
        value(None, "--sleep-before", "sleep_before", Param("[s]econds", Int(0)),
              "sleep s seconds before find"),
        value(None, "--sleep-after", "sleep_after", Param("[s]econds", Int(0)),
              "sleep s seconds after find"),
        value(None, "--sleep-during", "sleep_during", Param("[s]econds", Int(0)),
              "sleep s seconds during find"),
        value("-pdu", "--max-pdu", "max_pdu", Param("[n]umber of bytes", Int(4096, 131072)),
              "set max receive pdu to n bytes"),
        flag("-dhl", "--disable-host-lookup", "host_lookup", False, "disable hostname lookup"),
    ),
    *section("output options", "general",
        value("-rfp", "--request-file-path", "request_file_path", Param("[p]ath", Str()),
              "path to store request files to"),
        value("-rff", "--request-file-format", "request_file_format", Param("[f]ormat", Str()),
              "request file name format"),
    ),
    # Long spellings only, so they never collide with a short option a future
    # wlmscpfs may add.
    *section(SERVICE, None,
        value(None, "--config", "config_file", Param("[f]ilename", ReadableFile()),
              "read settings from configuration file f (wlmd.conf(5)); "
              "command-line options win"),
        flag(None, "--daemon", "daemon", True,
             "detach from the terminal and run in the background (no systemd)"),
        value(None, "--pid-file", "pid_file", Param("[f]ilename", Str()),
              "write the supervisor's process id to f and hold it locked while running"),
    ),
    *section(EXTENSIONS, None,
        value(None, "--listen-address", "listen_address",
              Param("[a]ddress", Address(), default_text="all interfaces"),
              "listen on address a only (IPv4/IPv6 address or host name)"),
        flag(None, "--filter-issuer-aet", "filter_issuer_aet", True,
             "return only items whose Scheduled Station AE Title is the calling AE title"),
        value(None, "--limit-answers", "limit_answers",
              Param("[n]umber", Int(0), default_text="0 = unlimited"),
              "return at most n matches per query"),
        flag(None, "--case-insensitive-names", "case_insensitive_names", True,
             "match person names (PN) ignoring case"),
        flag(None, "--wildcards-all-keys", "wildcards_all_keys", True,
             "allow wildcards on every key, incl. Patient ID, Modality and station AE title"),
        value(None, "--tls-cert", "tls_cert", Param("[f]ilename", ReadableFile()),
              "use DICOM TLS with the certificate (chain) in PEM file f"),
        value(None, "--tls-key", "tls_key",
              Param("[f]ilename", ReadableFile(), default_text="in the --tls-cert file"),
              "private key (PEM, unencrypted) for --tls-cert"),
        value(None, "--tls-ca", "tls_ca", Param("[f]ilename", ReadableFile()),
              "trust the CA certificates in PEM file f to verify modalities' certificates"),
        flag(None, "--tls-require-peer-cert", "tls_require_peer_cert", True,
             "require a modality certificate signed by a --tls-ca CA (mutual TLS)"),
        value(None, "--allowed-callers", "allowed_callers", Param("[f]ilename", ReadableFile()),
              "let only the calling AE titles listed in f query each listed storage area"),
        value(None, "--lock-timeout", "lock_timeout",
              Param("[s]econds", Int(1), default_text="wait forever, as wlmscpfs"),
              "answer 0xA700 when a writer holds the storage area's lock longer than s"),
        flag(None, "--no-index", "index", False,
             "no indexed snapshot: read the storage area on every query, as wlmscpfs"),
        value(None, "--max-associations-per-host", "max_associations_per_host",
              Param("[n]umber", Int(0), default_text="half of --max-associations; 0 = off"),
              "limit parallel associations from one peer address (IPv4 and IPv6)"),
        value(None, "--spare-workers", "spare_workers",
              Param("[n]umber", Int(0, 8)),
              "fork mode: keep n warmed-up workers that serve associations in turn"),
    ),
)
# fmt: on

# The one positional parameter, validated like an option value.
PORT = Param("port", Int(1, 65535))
PORT_HELP = "tcp/ip port number to listen on"


def config_defaults() -> Mapping[str, Any]:
    """Config's field defaults by name, for "(default)" marks in --help."""
    return {
        f.name: f.default
        for f in dataclasses.fields(Config)
        if f.default is not dataclasses.MISSING
    }


def _index(options: tuple[Option, ...]) -> dict[str, Option]:
    """Map every spelling to its row, refusing duplicates at import time."""
    index: dict[str, Option] = {}
    for option in options:
        for spelling in option.spellings:
            if spelling in index:
                raise RuntimeError(f"option spelled twice in the table: {spelling}")
            index[spelling] = option
    return index


BY_SPELLING: Mapping[str, Option] = _index(OPTIONS)
