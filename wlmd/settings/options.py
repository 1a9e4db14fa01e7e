"""Every wlmd command-line option, declared once.

This table is the single source of truth for the command line (as gunicorn's
``config.py`` is for gunicorn): the parser (:mod:`wlmd.settings.commandline`),
``--help``, ``--arguments`` (:mod:`wlmd.settings.helptext`), wlmd.conf
(:mod:`wlmd.settings.conffile`) and the man pages' option lists derive from
it, and tests check it against ``wlmscpfs --help``. The row types are in
:mod:`wlmd.settings.optiontypes`.
Adding an option means adding one :class:`Option` row here and, if it needs
new state, one field in :class:`wlmd.settings.config.Config`.

Semantics are DCMTK's ``OFCommandLine`` ones, so that every wlmscpfs command
line means the same to wlmd:

* Options that set the same :class:`~wlmd.settings.config.Config` field form a mutually
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
from collections.abc import Mapping
from typing import Any

from wlmd.mpps.policy import POLICY_NAMES
from wlmd.settings.config import Config, PreferredSyntax, ProcessModel, ReturnCharset
from wlmd.settings.optiontypes import (
    Action,
    Address,
    AeTitles,
    Choice,
    Int,
    Option,
    Param,
    ReadableFile,
    Requirement,
    StationDefaults,
    Str,
    act,
    flag,
    section,
    value,
)

LOG_LEVELS = ("fatal", "error", "warn", "info", "debug", "trace")

EXTENSIONS = "wlmd extensions (not in wlmscpfs)"
SERVICE = "service options (wlmd extensions)"
UPS = "unified procedure step (wlmd extensions)"
MPPS = "modality performed procedure step (wlmd extensions)"
API = "REST API and web page (wlmd extensions)"
HL7 = "HL7 order intake (wlmd extensions)"
HOUSEKEEPING = "housekeeping (wlmd extensions)"

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
        value(None, "--request-filter", "request_filter", Param("[f]ilename", ReadableFile()),
              "run request_filter(query, request) of Python file f on each C-FIND first"),
        value(None, "--lock-timeout", "lock_timeout",
              Param("[s]econds", Int(1), default_text="wait forever, as wlmscpfs"),
              "answer 0xA700 when a writer holds the storage area's lock longer than s"),
        flag(None, "--no-index", "index", False,
             "no indexed snapshot: read the storage area on every query, as wlmscpfs"),
        value(None, "--snapshot-cache", "snapshot_cache",
              Param("[f]ilename", Str(), default_text="$STATE_DIRECTORY/worklist.snapshot"),
              "keep the parsed snapshot in f across restarts (none: nowhere)"),
        value(None, "--max-associations-per-host", "max_associations_per_host",
              Param("[n]umber", Int(0), default_text="half of --max-associations; 0 = off"),
              "limit parallel associations from one peer address (IPv4 and IPv6)"),
        value(None, "--spare-workers", "spare_workers",
              Param("[n]umber", Int(0, 8)),
              "fork mode: keep n warmed-up workers that serve associations in turn "
              "(0: a worker forked for each association)"),
    ),
    *section(UPS, None,
        value(None, "--ups-ae-title", "ups_ae_titles",
              Param("[t]itles", AeTitles(), default_text="none: no UPS"),
              "offer Unified Procedure Step (PS3.4 CC) on the called AE titles t (a,b,...)"),
        value(None, "--state-store", "state_store",
              Param("[l]ocation", Str(), default_text="$STATE_DIRECTORY/wlmd.db"),
              "keep UPS state in SQLite file l, or in PostgreSQL at a postgresql:// URL"),
        value(None, "--ups-subscribers", "ups_subscribers", Param("[f]ilename", ReadableFile()),
              "event subscribers' addresses, one 'AE-title host port [tls]' per line of f"),
        value(None, "--ups-keep-final", "ups_keep_final",
              Param("[s]econds", Int(0)),
              "delete COMPLETED and CANCELED steps s seconds after their final state"),
        value(None, "--ups-event-expiry", "ups_event_expiry",
              Param("[s]econds", Int(60)),
              "give up an event not delivered s seconds after its change (subscriber gone)"),
    ),
    *section(MPPS, None,
        value(None, "--mpps-ae-title", "mpps_ae_titles",
              Param("[t]itles", AeTitles(), default_text="none: no MPPS"),
              "take Modality Performed Procedure Step N-CREATE/N-SET on called AE titles t"),
        value(None, "--mpps-entry-policy", "mpps_entry_policy",
              Param("[p]olicy", Choice(POLICY_NAMES)),
              "what an MPPS does to its worklist entry (hide: while IN PROGRESS; "
              "remove: after COMPLETED)"),
        value(None, "--mpps-area", "mpps_area", Param("[a]rea", Str()),
              "the storage area whose entries --mpps-entry-policy acts on"),
        value(None, "--mpps-remove-delay", "mpps_remove_delay", Param("[s]econds", Int(0)),
              "remove a performed entry s seconds after its MPPS is COMPLETED"),
        value(None, "--mpps-keep", "mpps_keep",
              Param("[s]econds", Int(0), default_text="7 days; 0 = forever"),
              "delete COMPLETED and DISCONTINUED MPPS s seconds after their final state"),
    ),
    *section(HOUSEKEEPING, None,
        value(None, "--housekeeping-interval", "housekeeping_interval",
              Param("[s]econds", Int(0), default_text="3600; 0 = off"),
              "run housekeeping (--purge-after-days, --mpps-keep) every s seconds"),
        value(None, "--purge-after-days", "purge_after_days",
              Param("[n]umber", Int(0), default_text="0 = never"),
              "housekeeping removes entries whose SPS start date is over n days ago"),
    ),
    *section(API, None,
        value(None, "--api-port", "api_port",
              Param("[n]umber", Int(1, 65535), default_text="none: no REST API"),
              "serve the REST API and the worklist web page on HTTP port n"),
        value(None, "--api-listen-address", "api_listen_address",
              Param("[a]ddress", Address()),
              "REST API: listen on address a only (not loopback: needs TLS and a token)"),
        value(None, "--api-token-file", "api_token_file", Param("[f]ilename", ReadableFile()),
              "REST API: require 'Authorization: Bearer T', T the first line of file f"),
        value(None, "--api-tls-cert", "api_tls_cert", Param("[f]ilename", ReadableFile()),
              "REST API: HTTPS with the certificate (chain) in PEM file f"),
        value(None, "--api-tls-key", "api_tls_key",
              Param("[f]ilename", ReadableFile(), default_text="in the --api-tls-cert file"),
              "REST API: private key (PEM, unencrypted) for --api-tls-cert"),
        value(None, "--api-tls-ca", "api_tls_ca", Param("[f]ilename", ReadableFile()),
              "REST API: require client certificates signed by a CA in PEM file f"),
    ),
    *section(HL7, None,
        value(None, "--hl7-port", "hl7_port",
              Param("[n]umber", Int(1, 65535), default_text="none: no HL7 intake"),
              "take HL7 v2 orders (ORM^O01, OMI^O23) over MLLP on tcp port n"),
        value(None, "--hl7-listen-address", "hl7_listen_address", Param("[a]ddress", Address()),
              "listen for HL7 on address a only"),
        value(None, "--hl7-area", "hl7_area", Param("[a]rea", Str()),
              "write the orders' worklist entries into storage area a"),
        value(None, "--hl7-mapping", "hl7_mapping", Param("[f]ilename", ReadableFile()),
              "map HL7 fields to attributes by the rules in f (over the default mapping)"),
        value(None, "--hl7-station-default", "hl7_station_defaults",
              Param("[m]ap", StationDefaults()),
              "scheduled station AE title per modality when an order has none: CT=CT01,..."),
        value(None, "--hl7-tls-cert", "hl7_tls_cert", Param("[f]ilename", ReadableFile()),
              "MLLP over TLS with the certificate (chain) in PEM file f"),
        value(None, "--hl7-tls-key", "hl7_tls_key",
              Param("[f]ilename", ReadableFile(), default_text="in the --hl7-tls-cert file"),
              "private key (PEM, unencrypted) for --hl7-tls-cert"),
        value(None, "--hl7-max-size", "hl7_max_size", Param("[b]ytes", Int(65536)),
              "answer AR and close the connection for a message over b bytes"),
        value(None, "--hl7-forward", "hl7_forward",
              Param("[h]ost:port", Str(), default_text="none: not sent"),
              "send each MPPS status change to the RIS at h as ORM^O01 (ORC-5 IP/CM/DC)"),
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
