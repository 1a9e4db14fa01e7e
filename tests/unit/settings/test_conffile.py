"""wlmd.conf(5): the file format, its errors, and how the command line wins over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wlmd.cli import main
from wlmd.settings import conffile
from wlmd.settings.commandline import parse_args
from wlmd.settings.conffile import ConfigFileError
from wlmd.settings.config import ProcessModel, ReturnCharset
from wlmd.settings.options import OPTIONS

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "etc" / "wlmd.conf"


@pytest.fixture
def conf(tmp_path: Path):
    """Write a configuration file; return its path as a string."""

    def write(text: str) -> str:
        path = tmp_path / "wlmd.conf"
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


# --- the format ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("max-associations = 7", "max_associations", 7),
        ("max-associations=7", "max_associations", 7),
        ("   max-associations   =   7   ", "max_associations", 7),
        ("data-files-path = /srv/wl", "data_files_path", "/srv/wl"),
        ('request-file-format = "#t x.dump"', "request_file_format", "#t x.dump"),
        ('request-file-format = ""', "request_file_format", ""),
        ("request-file-format = #t.dump", "request_file_format", "#t.dump"),
        ("log-level = INFO", "log_level", "info"),
        ("enable-file-reject = no", "enable_file_reject", False),
        ("disable-file-reject = yes", "enable_file_reject", False),
        ("disable-file-reject = no", "enable_file_reject", True),
        ("access-control = yes", "access_control", True),
        ("access-control = On", "access_control", True),
        ("access-full = false", "access_control", True),
        ("single-process = 1", "process_model", ProcessModel.SINGLE),
        ("fork = no", "process_model", ProcessModel.SINGLE),
        ("return-iso-ir-100 = yes", "return_charset", ReturnCharset.ISO_IR_100),
        ("refuse = no", "refuse", False),
        ("daemon = yes", "daemon", True),
        ("verbose = yes", "log_level", "info"),
        ("listen-address = 127.0.0.1", "listen_address", "127.0.0.1"),
    ],
)
def test_setting_sets_config_field(conf, text: str, field: str, expected: object) -> None:
    config = parse_args(["--config", conf(f"# comment\n\n{text}\n"), "104"])
    assert getattr(config, field) == expected
    assert config.config_file is not None


def test_port_from_file_and_command_line_wins(conf) -> None:
    path = conf("port = 4242\n")
    assert parse_args(["--config", path]).port == 4242
    assert parse_args(["--config", path, "1234"]).port == 1234


def test_missing_port_everywhere_is_the_usual_error(conf) -> None:
    with pytest.raises(ConfigFileError.__mro__[1], match="missing parameter: port"):
        parse_args(["--config", conf("max-associations = 3\n")])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("prot = 1", r"wlmd.conf:2: unknown setting 'prot'"),
        ("--port = 1", r"wlmd.conf:2: write the setting without dashes: 'port'"),
        ("fork", r"wlmd.conf:2: expected 'name = value', got 'fork'"),
        ("port = 0", r"wlmd.conf:2: invalid value for port: '0'"),
        (
            "listen-address =",
            r'wlmd.conf:2: no value for listen-address; write listen-address = ""',
        ),
        ("fork =   ", r"wlmd.conf:2: no value for fork"),
        ("port = 1\nport = 2", r"wlmd.conf:3: port given twice \(also on line 2\)"),
        ("max-associations = many", r"wlmd.conf:2: invalid value for max-associations: 'many'"),
        ("max-pdu = 100", r"wlmd.conf:2: invalid value for max-pdu: '100' \(expected 4096"),
        ("log-level = loud", r"wlmd.conf:2: invalid value for log-level: 'loud'"),
        ("fork = maybe", r"wlmd.conf:2: invalid value for fork: 'maybe' \(expected yes or no"),
        ("quiet = no", r"wlmd.conf:2: .*'no' is not allowed here: quiet is one of"),
        ("return-iso-ir-100 = no", r"wlmd.conf:2: .*'no' is not allowed here"),
        ("fork = yes\nsingle-process = yes", r"wlmd.conf:3: single-process conflicts with fork"),
        ("verbose = yes\nlog-level = info", r"wlmd.conf:3: log-level conflicts with verbose"),
        ("data-files-path = /a\ndata-files-path = /b", r"wlmd.conf:3: data-files-path given twice"),
        ("help = yes", r"wlmd.conf:2: 'help' cannot be used in a configuration file"),
        ("config = other.conf", r"wlmd.conf:2: 'config' cannot be used in a configuration file"),
        ("log-config = /no/such/file", r"wlmd.conf:2: invalid value for log-config.*no such file"),
        ("listen-address = not an address", r"wlmd.conf:2: invalid value for listen-address"),
    ],
)
def test_bad_line_names_file_line_and_reason(conf, text: str, message: str) -> None:
    with pytest.raises(ConfigFileError, match=message):
        parse_args(["--config", conf(f"# first line\n{text}\n"), "104"])


def test_log_config_and_log_level_in_one_file_conflict(conf, tmp_path: Path) -> None:
    logging_conf = tmp_path / "logging.conf"
    logging_conf.write_text("[loggers]\nkeys = root\n")
    path = conf(f"log-level = info\nlog-config = {logging_conf}\n")
    with pytest.raises(ConfigFileError, match=r":2: log-config conflicts with log-level on line 1"):
        parse_args(["--config", path, "104"])


def test_bad_file_stops_main_with_one_line_and_status_2(conf, capsys) -> None:
    assert main(["--config", conf("port = 104\nmax-associations = -3\n")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("wlmd: ") and "wlmd.conf:2: invalid value for max-associations" in err


def test_not_utf8_is_reported(conf, tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"data-files-path = /srv/\xe9\n")
    with pytest.raises(ConfigFileError, match="not UTF-8"):
        parse_args(["--config", str(path), "104"])


# --- the command line wins -------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_text", "argv", "field", "expected"),
    [
        ("max-associations = 7", ["--max-associations", "9"], "max_associations", 9),
        ("log-level = info", ["-d"], "log_level", "debug"),
        ("quiet = yes", ["-ll", "trace"], "log_level", "trace"),
        ("enable-file-reject = no", ["-efr"], "enable_file_reject", True),
        ("single-process = yes", ["--fork"], "process_model", ProcessModel.FORK),
        ("data-files-path = /file", ["-dfp", "/cmd"], "data_files_path", "/cmd"),
        # untouched groups keep the file's value
        ("max-associations = 7", ["-d"], "max_associations", 7),
    ],
)
def test_command_line_wins(
    conf, file_text: str, argv: list[str], field: str, expected: object
) -> None:
    config = parse_args(["--config", conf(file_text + "\n"), *argv, "104"])
    assert getattr(config, field) == expected


def test_command_line_log_level_replaces_file_log_config(conf, tmp_path: Path) -> None:
    logging_conf = tmp_path / "logging.conf"
    logging_conf.write_text("[loggers]\nkeys = root\n")
    config = parse_args(["--config", conf(f"log-config = {logging_conf}\n"), "-v", "104"])
    assert (config.log_config, config.log_level) == (None, "info")
    config = parse_args(["--config", conf("log-level = info\n"), "-lc", str(logging_conf), "104"])
    assert config.log_config == str(logging_conf)


def test_requires_rule_sees_file_and_command_line_together(conf) -> None:
    config = parse_args(["--config", conf("prefer-deflated = yes\n"), "+cl", "9", "104"])
    assert config.compression_level == 9


# --- the shipped etc/wlmd.conf -------------------------------------------------------------


def test_every_setting_has_a_name_in_the_file_format() -> None:
    named = {conffile.setting_name(option) for option in OPTIONS}
    expected = {option.long[2:] for option in OPTIONS}
    assert named == expected
    assert set(conffile.BY_NAME) == expected - {"help", "version", "arguments", "config"}


def test_shipped_file_documents_every_setting() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    mentioned = {
        line.lstrip("#").partition("=")[0].strip()
        for line in text.splitlines()
        if "=" in line and not line.startswith("# ")
    }
    missing = set(conffile.BY_NAME) - mentioned
    assert not missing, f"etc/wlmd.conf does not mention: {sorted(missing)}"
    assert "port" in mentioned


def test_shipped_reference_part_is_the_generated_template() -> None:
    """etc/wlmd.conf's second half is conffile.template(): regenerate it when options change."""
    text = SHIPPED.read_text(encoding="utf-8")
    active = [
        line.partition("=")[0].strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    skip = [name for name in active if name != "port"] + ["request-file-path"]
    assert text.endswith(conffile.template(skip)), (
        "etc/wlmd.conf is out of date: regenerate its reference part with "
        "wlmd.settings.conffile.template()"
    )


def test_shipped_file_parses_and_every_commented_default_parses(tmp_path: Path) -> None:
    logging_conf = tmp_path / "logging.conf"
    logging_conf.write_text("[loggers]\nkeys = root\n")
    text = SHIPPED.read_text(encoding="utf-8").replace("/etc/wlmd/logging.conf", str(logging_conf))
    config = conffile.parse(text, "wlmd.conf")
    assert config.port == "104"
    # Uncommenting any single reference line gives a valid file (defaults are real values).
    for line in text.splitlines():
        if line.startswith("#") and not line.startswith("# ") and "=" in line:
            name, _, value = line[1:].partition("=")
            if name.strip() in {"log-level", "quiet", "verbose", "debug"}:
                continue  # these conflict with the active log-config line, by design
            if not value.strip() and conffile.BY_NAME[name.strip()].param is not None:
                continue  # no default value to show (e.g. pid-file)
            conffile.parse(text + line[1:] + "\n", "wlmd.conf")
