"""bench/upsevents.py stays runnable: a fan-out to 3 subscribers, 2 rounds, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_fan_out_benchmark_runs_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    script = REPO_ROOT / "bench" / "upsevents.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--subscribers", "3", "--rounds", "2", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "target: all 3 delivered" in proc.stdout
    result = json.loads(out.read_text())
    assert result["subscribers"] == 3
    for phase in ("create", "claim"):
        figures = result[phase]
        assert 0 < figures["first_median_ms"] <= figures["all_median_ms"] <= figures["all_max_ms"]
