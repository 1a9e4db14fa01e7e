"""bench/api.py stays runnable: a tiny run end to end (the figures are in bench/RESULTS.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("ids", [[], ["--with-ids"]])
def test_bench_api_runs(ids: list[str], wlmd_available: None, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TMPDIR": str(tmp_path)}
    argv = [sys.executable, str(REPO_ROOT / "bench" / "api.py"), "--entries", "50",
            "--creates", "5", "--timeout", "60", *ids]  # fmt: skip
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert re.search(r"create -> visible to the next C-FIND\s+n=5 ", proc.stdout), proc.stdout
    assert "C-FINDs that did not see the new entry yet: 0" in proc.stdout
