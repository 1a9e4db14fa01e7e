"""What tests that drive real programs share: "required in CI" and "run it or fail".

A test that needs a real component (DCMTK, systemd-nspawn, debootstrap, dpkg,
systemd-analyze, ...) skips without it on a developer's machine and fails with
``CI=true``: a green CI run never hides a test that did not run.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

COMMAND_TIMEOUT = 120.0


def ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def need(ok: object, message: str) -> None:
    """Skip when ``ok`` is false; with CI=true fail instead (nothing is skipped in CI)."""
    if ok:
        return
    if ci():
        pytest.fail(f"{message}; CI=true, so this is required", pytrace=False)
    pytest.skip(message)


def run(
    argv: Sequence[str | Path],
    *,
    timeout: float = COMMAND_TIMEOUT,
    check: bool = True,
    env: dict[str, str] | None = None,
    cwd: Path | str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` to completion, no stdin; a timeout, or with ``check`` a non-zero
    exit, fails the test showing the command and the tail of its output."""
    words = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            words,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"timed out after {timeout}s: {shlex.join(words)}", pytrace=False)
        raise AssertionError from exc  # not reached
    if check and proc.returncode != 0:
        pytest.fail(
            f"exit {proc.returncode}: {shlex.join(words)}\n--- stdout ---\n{proc.stdout[-6000:]}"
            f"\n--- stderr ---\n{proc.stderr[-6000:]}",
            pytrace=False,
        )
    return proc
