"""Command-line errors: exit status != 0 and one line on stderr."""

from __future__ import annotations

import pytest

from tests.helpers.servers import run_wlmd_cli


@pytest.mark.parametrize(
    "args",
    [
        ["--no-such-option", "11112"],
        ["-pdu", "10", "11112"],  # out of range 4096..131072
        ["-dfp"],  # missing value and missing port
        ["notaport"],
    ],
    ids=["unknown-option", "pdu-out-of-range", "missing-value", "bad-port"],
)
def test_bad_command_line(args: list[str], wlmd_available: None) -> None:
    proc = run_wlmd_cli(args)
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert proc.stdout == "", proc.stdout


def test_help_exits_zero(wlmd_available: None) -> None:
    proc = run_wlmd_cli(["--help"])
    assert proc.returncode == 0
    assert "--data-files-path" in proc.stdout
