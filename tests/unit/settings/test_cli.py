"""The command line: every wlmscpfs option, DCMTK's parsing rules, one-line errors.

The expectations below are written out by hand rather than derived from
wlmd/options.py, so that the table is tested and not merely restated; a test
checks that every row of the table is covered here.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from wlmd import __version__, cli
from wlmd.cli import main
from wlmd.settings.commandline import UsageError, parse_args, split_command_file
from wlmd.settings.config import Config, PreferredSyntax, ProcessModel, ReturnCharset
from wlmd.settings.options import BY_SPELLING, OPTIONS

REPO = Path(__file__).resolve().parents[3]
WIDEN_DATE = str(REPO / "examples" / "request-filters" / "widen_date.py")

# (short, long, Config field, value set) for every option without a value.
FLAGS: list[tuple[str | None, str, str, Any]] = [
    ("-q", "--quiet", "log_level", "fatal"),
    ("-v", "--verbose", "log_level", "info"),
    ("-d", "--debug", "log_level", "debug"),
    ("-s", "--single-process", "process_model", ProcessModel.SINGLE),
    (None, "--fork", "process_model", ProcessModel.FORK),
    ("-efr", "--enable-file-reject", "enable_file_reject", True),
    ("-dfr", "--disable-file-reject", "enable_file_reject", False),
    ("-cs0", "--return-no-char-set", "return_charset", ReturnCharset.NONE),
    ("-cs1", "--return-iso-ir-100", "return_charset", ReturnCharset.ISO_IR_100),
    ("-csk", "--keep-char-set", "return_charset", ReturnCharset.KEEP),
    ("-nse", "--no-sq-expansion", "sq_expansion", False),
    ("+x=", "--prefer-uncompr", "preferred_syntax", PreferredSyntax.UNCOMPRESSED),
    ("+xe", "--prefer-little", "preferred_syntax", PreferredSyntax.LITTLE),
    ("+xb", "--prefer-big", "preferred_syntax", PreferredSyntax.BIG),
    ("+xd", "--prefer-deflated", "preferred_syntax", PreferredSyntax.DEFLATED),
    ("+xi", "--implicit", "preferred_syntax", PreferredSyntax.IMPLICIT),
    ("-ac", "--access-full", "access_control", False),
    ("+ac", "--access-control", "access_control", True),
    ("+u", "--enable-new-vr", "enable_new_vr", True),
    ("-u", "--disable-new-vr", "enable_new_vr", False),
    (None, "--refuse", "refuse", True),
    (None, "--reject", "reject", True),
    (None, "--no-fail", "no_fail", True),
    ("-dhl", "--disable-host-lookup", "host_lookup", False),
    (None, "--filter-issuer-aet", "filter_issuer_aet", True),
    (None, "--case-insensitive-names", "case_insensitive_names", True),
    (None, "--wildcards-all-keys", "wildcards_all_keys", True),
    (None, "--no-index", "index", False),
    (None, "--tls-require-peer-cert", "tls_require_peer_cert", True),
    (None, "--daemon", "daemon", True),
]

# (short, long, argument, Config field, value) for every option with a value;
# "{logcfg}" is replaced by a readable file.
VALUES: list[tuple[str | None, str, str, str, Any]] = [
    ("-ll", "--log-level", "trace", "log_level", "trace"),
    ("-ll", "--log-level", "DEBUG", "log_level", "debug"),  # DCMTK ignores case
    ("-ll", "--log-level", "Fatal", "log_level", "fatal"),
    ("-lc", "--log-config", "{logcfg}", "log_config", "{logcfg}"),
    ("-dfp", "--data-files-path", "/srv/worklists", "data_files_path", "/srv/worklists"),
    ("-dfp", "--data-files-path", "-v", "data_files_path", "-v"),  # next arg, always
    ("+cl", "--compression-level", "0", "compression_level", 0),
    ("+cl", "--compression-level", "9", "compression_level", 9),
    ("-ta", "--acse-timeout", "1", "acse_timeout", 1),
    ("-td", "--dimse-timeout", "7", "dimse_timeout", 7),
    (None, "--max-associations", "1", "max_associations", 1),
    (None, "--max-associations-per-host", "0", "max_associations_per_host", 0),  # 0 = off
    (None, "--max-associations-per-host", "4", "max_associations_per_host", 4),
    (None, "--spare-workers", "2", "spare_workers", 2),
    (None, "--sleep-before", "0", "sleep_before", 0),
    (None, "--sleep-after", "3", "sleep_after", 3),
    (None, "--sleep-during", "2", "sleep_during", 2),
    ("-pdu", "--max-pdu", "4096", "max_pdu", 4096),
    ("-pdu", "--max-pdu", "131072", "max_pdu", 131072),
    ("-rfp", "--request-file-path", "/var/spool/wl", "request_file_path", "/var/spool/wl"),
    ("-rff", "--request-file-format", "-x.dump", "request_file_format", "-x.dump"),  # as DCMTK
    ("-rff", "--request-file-format", "", "request_file_format", ""),
    (None, "--listen-address", "127.0.0.1", "listen_address", "127.0.0.1"),
    (None, "--listen-address", "::1", "listen_address", "::1"),
    (None, "--listen-address", "[::1]", "listen_address", "::1"),
    (None, "--listen-address", "wl-host.example.org", "listen_address", "wl-host.example.org"),
    (None, "--listen-address", "", "listen_address", ""),
    (None, "--limit-answers", "0", "limit_answers", 0),
    (None, "--limit-answers", "25", "limit_answers", 25),
    (None, "--lock-timeout", "5", "lock_timeout", 5),
    (
        None,
        "--snapshot-cache",
        "/var/cache/wl.snapshot",
        "snapshot_cache",
        "/var/cache/wl.snapshot",
    ),
    (None, "--snapshot-cache", "none", "snapshot_cache", "none"),
    (None, "--allowed-callers", "{conf}", "allowed_callers", "{conf}"),
    (None, "--request-filter", WIDEN_DATE, "request_filter", WIDEN_DATE),
    (None, "--ups-ae-title", "UPS, UPS_2", "ups_ae_titles", ("UPS", "UPS_2")),
    (
        None,
        "--state-store",
        "/var/lib/wlmd/state/wlmd.db",
        "state_store",
        "/var/lib/wlmd/state/wlmd.db",
    ),
    (None, "--ups-subscribers", "{conf}", "ups_subscribers", "{conf}"),
    (None, "--ups-keep-final", "600", "ups_keep_final", 600),
    (None, "--ups-event-expiry", "7200", "ups_event_expiry", 7200),
    (None, "--mpps-ae-title", "WLMD", "mpps_ae_titles", ("WLMD",)),
    (None, "--mpps-entry-policy", "hide-remove", "mpps_entry_policy", "hide-remove"),
    (None, "--mpps-area", "WLMD", "mpps_area", "WLMD"),
    (None, "--mpps-remove-delay", "60", "mpps_remove_delay", 60),
    (None, "--mpps-keep", "86400", "mpps_keep", 86400),
    (None, "--housekeeping-interval", "0", "housekeeping_interval", 0),
    (None, "--purge-after-days", "30", "purge_after_days", 30),
    (None, "--hl7-port", "2575", "hl7_port", 2575),
    (None, "--hl7-listen-address", "::1", "hl7_listen_address", "::1"),
    (None, "--hl7-area", "ORDERS", "hl7_area", "ORDERS"),
    (None, "--hl7-mapping", "{conf}", "hl7_mapping", "{conf}"),
    (
        None,
        "--hl7-station-default",
        "CT=CT01, mr=MR01",
        "hl7_station_defaults",
        (("CT", "CT01"), ("MR", "MR01")),
    ),
    (None, "--hl7-tls-cert", "{cert}", "hl7_tls_cert", "{cert}"),
    (None, "--hl7-tls-key", "{key}", "hl7_tls_key", "{key}"),
    (None, "--hl7-max-size", "1048576", "hl7_max_size", 1048576),
    (None, "--hl7-forward", "ris.example:2575", "hl7_forward", "ris.example:2575"),
    (None, "--tls-cert", "{cert}", "tls_cert", "{cert}"),
    (None, "--tls-key", "{key}", "tls_key", "{key}"),
    (None, "--tls-ca", "{cert}", "tls_ca", "{cert}"),
    (None, "--pid-file", "/run/wlmd/wlmd.pid", "pid_file", "/run/wlmd/wlmd.pid"),
    (None, "--config", "{conf}", "config_file", "{conf}"),  # an empty wlmd.conf
    (None, "--api-port", "8080", "api_port", 8080),
    (None, "--api-listen-address", "::1", "api_listen_address", "::1"),
    (None, "--api-listen-address", "localhost", "api_listen_address", "localhost"),
    (None, "--api-token-file", "{token}", "api_token_file", "{token}"),
    (None, "--api-tls-cert", "{cert}", "api_tls_cert", "{cert}"),
    (None, "--api-tls-key", "{key}", "api_tls_key", "{key}"),
    (None, "--api-tls-ca", "{cert}", "api_tls_ca", "{cert}"),
]

# Options that act rather than set a field.
ACTIONS = {"--help", "--version", "--arguments"}


@pytest.fixture
def logcfg(tmp_path: Path) -> str:
    path = tmp_path / "logging.ini"
    path.write_text("[loggers]\nkeys=root\n")
    return str(path)


@pytest.fixture
def token(tmp_path: Path) -> str:
    path = tmp_path / "api-token"
    path.write_text("0123456789abcdef-token\n")
    return str(path)


@pytest.fixture
def conf(tmp_path: Path) -> str:
    path = tmp_path / "wlmd.conf"
    path.write_text("# nothing set\n")
    return str(path)


def _spellings(short: str | None, long: str) -> list[str]:
    return [s for s in (short, long) if s]


def _needs(option: str, pki: dict[str, str] | None = None) -> list[str]:
    """Other options a test of `option` needs to be valid."""
    long = BY_SPELLING[option].long
    if long == "--compression-level":
        return ["+xd"]
    if long in ("--ups-ae-title", "--mpps-ae-title"):
        return ["--state-store", "ups.db"]
    if long == "--mpps-entry-policy":
        return ["--mpps-ae-title", "WLMD", "--state-store", "ups.db", "--mpps-area", "WLMD"]
    if long == "--hl7-forward":
        return ["--mpps-ae-title", "WLMD", "--state-store", "ups.db"]
    if long.startswith("--api-") and long != "--api-port":
        needed = ["--api-port", "8080"]
        if long.startswith("--api-tls-") and pki is not None:
            needed += ["--api-tls-cert", pki["cert"], "--api-tls-key", pki["key"]]
        return needed
    if long == "--tls-cert" and pki is not None:
        return ["--tls-key", pki["key"]]
    if long in ("--tls-key", "--tls-ca", "--tls-require-peer-cert") and pki is not None:
        needed = ["--tls-cert", pki["cert"]]
        if long != "--tls-key":
            needed += ["--tls-key", pki["key"]]
        if long == "--tls-require-peer-cert":
            needed += ["--tls-ca", pki["cert"]]
        return needed
    return []


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A self-signed certificate and its key, made with openssl."""
    directory = tmp_path_factory.mktemp("pki")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=test", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return {"cert": str(cert), "key": str(key)}


# --- every option --------------------------------------------------------------


def test_no_options_gives_wlmscpfs_defaults() -> None:
    assert parse_args(["104"]) == Config(port=104)


@pytest.mark.parametrize(
    ("spelling", "field", "expected"),
    [(s, f, v) for short, long, f, v in FLAGS for s in _spellings(short, long)],
)
def test_flag_sets_field(spelling: str, field: str, expected: Any, pki: dict[str, str]) -> None:
    config = parse_args([*_needs(spelling, pki), spelling, "104"])
    assert getattr(config, field) == expected


@pytest.mark.parametrize(
    ("spelling", "argument", "field", "expected"),
    [(s, a, f, v) for short, long, a, f, v in VALUES for s in _spellings(short, long)],
)
def test_value_option_sets_field(
    spelling: str,
    argument: str,
    field: str,
    expected: Any,
    logcfg: str,
    conf: str,
    token: str,
    pki: dict[str, str],
) -> None:
    def fill(text: str) -> str:
        for name, value in {"logcfg": logcfg, "conf": conf, "token": token, **pki}.items():
            text = text.replace("{" + name + "}", value)
        return text

    argument = fill(argument)
    if isinstance(expected, str):
        expected = fill(expected)
    config = parse_args([*_needs(spelling, pki), spelling, argument, "104"])
    assert getattr(config, field) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ups-ae-title", "UPS"], "--ups-ae-title needs --state-store"),
        (["--hl7-forward", "ris:2575"], "--hl7-forward only allowed with --mpps-ae-title"),
        (
            ["--hl7-forward", "ris", "--mpps-ae-title", "W", "--state-store", "x.db"],
            "bad --hl7-forward 'ris': give HOST:PORT",
        ),
        (["--ups-ae-title", "UPS,", "--state-store", "x.db"], "'' is not an AE title"),
        (["--ups-ae-title", "A_TITLE_OF_17_CHR", "--state-store", "x.db"], "is not an AE title"),
    ],
)
def test_ups_settings_are_checked_with_the_command_line(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_args([*argv, "104"])


def test_ups_state_store_defaults_to_systemds_state_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/wlmd")
    assert parse_args(["--ups-ae-title", "UPS", "104"]).ups_ae_titles == ("UPS",)


def test_a_bad_subscriber_line_stops_start_up(tmp_path: Path) -> None:
    table = tmp_path / "subscribers"
    table.write_text("DCMUPSSCU 127.0.0.1 notaport\n")
    argv = ["--ups-ae-title", "UPS", "--state-store", "x.db", "--ups-subscribers", str(table)]
    with pytest.raises(UsageError, match=re.escape(f"{table}:1: 'notaport' is not a port")):
        parse_args([*argv, "104"])


def test_every_table_row_is_tested_here() -> None:
    tested = {long for _, long, *_ in FLAGS} | {long for _, long, *_ in VALUES} | ACTIONS
    assert {option.long for option in OPTIONS} == tested
    pairs = {(s, lg) for s, lg, *_ in FLAGS} | {(s, lg) for s, lg, *_ in VALUES}
    for option in OPTIONS:
        if option.action is None:
            assert (option.short, option.long) in pairs, option.long


def test_every_config_field_is_settable() -> None:
    settable = {option.field for option in OPTIONS if option.field}
    fields = set(Config.__dataclass_fields__) - {"port"}
    assert settable == fields


@pytest.mark.parametrize("port", ["1", "104", "11112", "65535"])
def test_port(port: str) -> None:
    assert parse_args([port]).port == int(port)


def test_options_may_follow_the_port() -> None:
    assert parse_args(["104", "-v", "-cs1"]) == parse_args(["-v", "-cs1", "104"])


# --- rightmost wins --------------------------------------------------------------


def _groups() -> list[tuple[str, str, Any, str, Any]]:
    """Every ordered pair of options that set the same field (flags and -ll)."""
    by_field: dict[str, list[tuple[list[str], Any]]] = {}
    for short, long, field, value in FLAGS:
        by_field.setdefault(field, []).append(([short or long], value))
    by_field["log_level"].append((["-ll", "error"], "error"))
    cases = []
    for field, members in by_field.items():
        for (first, _), (second, value) in itertools.permutations(members, 2):
            cases.append((field, " ".join(first), None, " ".join(second), value))
    return cases


@pytest.mark.parametrize(("field", "first", "_unused", "second", "expected"), _groups())
def test_rightmost_of_exclusive_options_wins(
    field: str, first: str, _unused: None, second: str, expected: Any
) -> None:
    config = parse_args([*first.split(), *second.split(), "104"])
    assert getattr(config, field) == expected


@pytest.mark.parametrize(
    ("argv", "field", "expected"),
    [
        (["-cs1", "-cs0"], "return_charset", ReturnCharset.NONE),
        (["-q", "-d"], "log_level", "debug"),
        (["-d", "-q"], "log_level", "fatal"),
        (["-s", "--fork"], "process_model", ProcessModel.FORK),
        (["-pdu", "8192", "-pdu", "4096"], "max_pdu", 4096),
        (["-dfp", "a", "--data-files-path", "b"], "data_files_path", "b"),
        # As wlmscpfs: only the rightmost occurrence is validated.
        (["-pdu", "99", "-pdu", "4096"], "max_pdu", 4096),
        (["-ll", "bogus", "-v"], "log_level", "info"),
        (["+xd", "+cl", "5", "+cl", "1"], "compression_level", 1),
    ],
)
def test_rightmost_wins_examples(argv: list[str], field: str, expected: Any) -> None:
    assert getattr(parse_args([*argv, "104"]), field) == expected


# --- @file -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("-v  --arguments\n  -dfp /tmp\n", ["-v", "--arguments", "-dfp", "/tmp"]),
        ('-dfp "/tmp/a b"', ["-dfp", "/tmp/a b"]),
        ("-rff 'a b'", ["-rff", "a b"]),
        ('-rff "it\'s"', ["-rff", "it's"]),
        ('-rff ""', ["-rff", ""]),
        ('-rff "x\ny"', ["-rff", "x\ny"]),
        ('ab"c d"e', ["ab", "c d", "e"]),  # as DCMTK: quotes end words
        ("a\\ b", ["a\\", "b"]),  # no escapes
        ("", []),
    ],
)
def test_split_command_file(text: str, words: list[str]) -> None:
    assert split_command_file(text, "f") == words


def test_at_file_is_expanded_in_place(tmp_path: Path) -> None:
    (tmp_path / "opts.txt").write_text('-cs1\n-dfp "/srv/work lists"\n--max-pdu 8192\n')
    config = parse_args(["-v", f"@{tmp_path / 'opts.txt'}", "104"])
    assert config.return_charset is ReturnCharset.ISO_IR_100
    assert config.data_files_path == "/srv/work lists"
    assert config.max_pdu == 8192
    assert config.log_level == "info"


def test_at_file_may_hold_the_port_and_stand_for_a_value(tmp_path: Path) -> None:
    (tmp_path / "port").write_text("11112")
    (tmp_path / "dir").write_text("/data")
    config = parse_args(["-dfp", f"@{tmp_path / 'dir'}", f"@{tmp_path / 'port'}"])
    assert (config.port, config.data_files_path) == (11112, "/data")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("-v @other.txt", "names another command file: '@other.txt'"),
        ('-dfp "/tmp', "unterminated quote in command file"),
    ],
)
def test_bad_at_file(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "cmd.txt"
    path.write_text(content)
    with pytest.raises(UsageError, match=message):
        parse_args([f"@{path}", "104"])


def test_missing_at_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"cannot read command file '.*nope\.txt': No such file"):
        parse_args([f"@{tmp_path / 'nope.txt'}", "104"])


def test_lone_at_sign_is_a_parameter() -> None:
    with pytest.raises(UsageError, match="too many parameters: '@'"):
        parse_args(["104", "@"])


# --- errors: exit 2, one line naming the culprit ---------------------------------------

BAD: list[tuple[list[str], str]] = [
    (["-pdu", "99", "104"], "invalid value for --max-pdu: '99' (expected 4096..131072)"),
    (["--max-pdu", "200000", "104"], "invalid value for --max-pdu: '200000'"),
    (["-pdu", "5000x", "104"], "invalid value for --max-pdu: '5000x'"),
    (["-pdu", "5_000", "104"], "invalid value for --max-pdu: '5_000'"),
    (["+xd", "+cl", "10", "104"], "invalid value for --compression-level: '10' (expected 0..9)"),
    (["+xd", "+cl", "-1", "104"], "invalid value for --compression-level: '-1'"),
    (["+cl", "5", "104"], "--compression-level only allowed with --prefer-deflated"),
    (["+xd", "+x=", "+cl", "5", "104"], "--compression-level only allowed with --prefer-deflated"),
    (["-ta", "0", "104"], "invalid value for --acse-timeout: '0' (expected >= 1)"),
    (["-ta", "abc", "104"], "invalid value for --acse-timeout: 'abc'"),
    (["-ta", "99999999999", "104"], "invalid value for --acse-timeout: '99999999999'"),
    (["-td", "0", "104"], "invalid value for --dimse-timeout: '0'"),
    (["--max-associations", "0", "104"], "invalid value for --max-associations: '0'"),
    (
        ["--max-associations-per-host", "-1", "104"],
        "invalid value for --max-associations-per-host: '-1' (expected >= 0)",
    ),
    (["--sleep-before", "-1", "104"], "invalid value for --sleep-before: '-1' (expected >= 0)"),
    (["--sleep-after", "x", "104"], "invalid value for --sleep-after: 'x'"),
    (["--sleep-during", "-5", "104"], "invalid value for --sleep-during: '-5'"),
    (["--limit-answers", "-1", "104"], "invalid value for --limit-answers: '-1'"),
    (["-ll", "bogus", "104"], "invalid value for --log-level: 'bogus' (expected one of fatal,"),
    (["-lc", "/nonexistent/log.ini", "104"], "invalid value for --log-config: '/nonexistent/"),
    (["-lc", "/", "104"], "invalid value for --log-config: '/' (not a regular file)"),
    (["--listen-address", "300.1.1.1", "104"], "invalid value for --listen-address: '300.1.1.1'"),
    (["--listen-address", "bad_host!", "104"], "invalid value for --listen-address: 'bad_host!'"),
    (["--listen-address", "a b", "104"], "invalid value for --listen-address: 'a b'"),
    (["0"], "invalid value for port: '0' (expected 1..65535)"),
    (["65536"], "invalid value for port: '65536'"),
    (["abc"], "invalid value for port: 'abc'"),
    (["0x10"], "invalid value for port: '0x10'"),
    (["-1"], "invalid value for port: '-1'"),  # a number, not an option, as DCMTK
    (["-v"], "missing parameter: port"),
    (["104", "105", "106"], "too many parameters: '105' '106'"),
    (["--frobnicate", "104"], "unknown option: --frobnicate"),
    (["-V", "104"], "unknown option: -V"),
    (["--verb", "104"], "unknown option: --verb"),  # no abbreviations, as DCMTK
    (["--", "104"], "unknown option: --"),
    (["104", "-pdu"], "missing value for option --max-pdu"),
    (["-h", "--frobnicate"], "unknown option: --frobnicate"),  # syntax before help
]


@pytest.mark.parametrize(("argv", "message"), BAD)
def test_bad_command_line_exits_2_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("wlmd: ")
    assert err.count("\n") == 1
    assert message in err


def test_log_config_conflicts_with_log_levels(logcfg: str) -> None:
    # As wlmscpfs: "--log-config not allowed with --verbose, --debug or --quiet"
    for level in (["-v"], ["-q"], ["-d"], ["-ll", "info"]):
        with pytest.raises(UsageError, match="--log-config not allowed with"):
            parse_args(["-lc", logcfg, *level, "104"])
        with pytest.raises(UsageError, match="--log-config not allowed with"):
            parse_args([*level, "-lc", logcfg, "104"])


def test_bad_log_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "broken.ini"
    path.write_text("this is not [an ini file\n")
    assert main(["-lc", str(path), "104"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"wlmd: bad --log-config file '{path}'")
    assert err.count("\n") == 1


def test_no_traceback_from_the_real_entry_point() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "wlmd", "--max-pdu", "99", "104"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == "wlmd: invalid value for --max-pdu: '99' (expected 4096..131072)\n"


# --- help, version, arguments -----------------------------------------------------------


def test_help_lists_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    words = out.split()
    for option in OPTIONS:
        for spelling in option.spellings:
            assert spelling in words, spelling
    assert "port" in words


def test_help_marks_defaults_from_config(capsys: pytest.CaptureFixture[str]) -> None:
    main(["-h"])
    out = capsys.readouterr().out
    assert "--return-no-char-set   return no specific character set (default)" in out
    assert "[p]ath: string (default: .)" in out
    assert "[s]econds: integer (default: unlimited)" in out
    assert "--return-iso-ir-100    return specific character set ISO IR 100\n" in out


def test_help_does_not_check_values(capsys: pytest.CaptureFixture[str]) -> None:
    # As wlmscpfs: `wlmscpfs -h 0` and `wlmscpfs --help -pdu 1` print the help.
    assert main(["-h", "0"]) == 0
    assert main(["--help", "-pdu", "1"]) == 0
    assert capsys.readouterr().out.count("usage: wlmd [options] port") == 2


def test_no_arguments_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    # As wlmscpfs: no arguments at all is a request for the usage, exit 0.
    assert main([]) == 0
    assert "usage: wlmd [options] port" in capsys.readouterr().out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version", "104"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"wlmd {__version__}"
    assert [line.split()[0] for line in lines[1:]] == ["python", "pydicom", "pynetdicom"]


def test_arguments_prints_expanded_line_and_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.txt").write_text('-v "-dfp" "/a b"')
    assert main(["--arguments", f"@{tmp_path / 'a.txt'}", "-pdu", "100", "104"]) == 2
    err = capsys.readouterr().err.splitlines()
    # DCMTK: calling 'wlmscpfs' with 5 arguments: '--arguments' '--verbose' '--max-pdu' ...
    assert err == [
        "calling 'wlmd' with 7 arguments: '--arguments' '--verbose' '--data-files-path' "
        "'/a b' '--max-pdu' '100' '104'",
        "wlmd: invalid value for --max-pdu: '100' (expected 4096..131072)",
    ]


@pytest.fixture
def fake_server(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Stand-ins for wlmd.process.server.serve and setup_logging, recording their calls."""
    calls: list[Any] = []

    def serve(config: Config) -> int:
        calls.append(("serve", config))
        return 0

    server = types.ModuleType("wlmd.process.server")
    server.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wlmd.process.server", server)
    monkeypatch.setattr(cli, "setup_logging", lambda config: calls.append(("logging", config)))
    return calls


def test_main_sets_up_logging_then_serves(fake_server: list[Any]) -> None:
    assert main(["-v", "--arguments", "104"]) == 0
    config = Config(port=104, log_level="info")
    assert fake_server == [("logging", config), ("serve", config)]


def test_main_reads_sys_argv(fake_server: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["wlmd", "-cs1", "4242"])
    assert main() == 0
    assert fake_server[-1] == ("serve", Config(port=4242, return_charset=ReturnCharset.ISO_IR_100))


# --- against the real wlmscpfs ----------------------------------------------------------


@pytest.mark.dcmtk
@pytest.mark.skipif(shutil.which("wlmscpfs") is None, reason="DCMTK's wlmscpfs not installed")
def test_table_has_every_wlmscpfs_option() -> None:
    """Every option of `wlmscpfs --help` exists here, with the same short/long pairing."""
    text = subprocess.run(["wlmscpfs", "--help"], capture_output=True, text=True, timeout=30).stdout
    pairs: list[tuple[str | None, str]] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0][0] not in "+-":
            continue
        if words[0].startswith("--"):
            pairs.append((None, words[0]))
        elif len(words) > 1 and words[1].startswith("--"):
            pairs.append((words[0], words[1]))
    assert len(pairs) >= 40  # 40 in DCMTK 3.6.7
    for short, long in pairs:
        option = BY_SPELLING.get(long)
        assert option is not None, long
        assert option.short == short, long
    wlmscpfs_longs = {long for _, long in pairs}
    extensions = {o.long for o in OPTIONS if o.long not in wlmscpfs_longs}
    assert all(BY_SPELLING[e].short is None for e in extensions)
