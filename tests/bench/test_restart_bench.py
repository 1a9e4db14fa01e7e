"""bench/restart.py stays runnable: a tiny run end to end, and what it must show.

N=300, one round each: wlmd's first start parses everything, its restarts parse
nothing (the database is older than the cache's racy margin), and after 1 % of
the files changed while stopped it parses just those and answers the changed
PatientID as wlmscpfs does (exactly one match in both).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers.dcmtk import require_dcmtk

REPO_ROOT = Path(__file__).resolve().parents[2]
N = 300


def test_restart_bench_small(tmp_path: Path) -> None:
    require_dcmtk("wlmscpfs")
    out = tmp_path / "restart.json"
    # A short work directory: the notify socket's path must fit sun_path (108 bytes).
    with tempfile.TemporaryDirectory(prefix="rb-", dir="/tmp") as work:
        argv = [sys.executable, str(REPO_ROOT / "bench" / "restart.py"), "--sizes", str(N)]
        argv += ["--repeat", "1", "--workdir", work, "--json", str(out)]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    block = json.loads(out.read_text())["sizes"][str(N)]
    assert block["wlmd_no_cache"]["parsed_again"] is None  # no cache yet: a full parse
    assert [s["parsed_again"] for s in block["wlmd_restart"]] == [0]
    assert all(s["matches"] == 1 for s in block["wlmd_restart"] + block["wlmscpfs_cold"])
    (changed,) = block["changed"]
    assert changed["changed_files"] == N // 100
    assert changed["wlmd"]["parsed_again"] == N // 100
    assert changed["wlmd"]["matches"] == changed["wlmscpfs"]["matches"] == 1
    assert "restart → first answer" in proc.stdout


def test_restart_bench_reuses_a_kept_cache(tmp_path: Path) -> None:
    """``--cache FILE``: the first run writes FILE, the next restarts on it without a full parse."""
    require_dcmtk("wlmscpfs")
    cache = tmp_path / "kept" / "worklist.snapshot"
    blocks = []
    with tempfile.TemporaryDirectory(prefix="rb-", dir="/tmp") as work:
        for round_ in (1, 2):
            out = tmp_path / f"restart-{round_}.json"
            argv = [sys.executable, str(REPO_ROOT / "bench" / "restart.py"), "--sizes", str(N)]
            argv += ["--repeat", "1", "--workdir", work, "--json", str(out)]
            argv += ["--cache", str(cache)]
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            blocks.append(json.loads(out.read_text())["sizes"][str(N)])
            assert cache.is_file()
    assert blocks[0]["wlmd_no_cache"]["parsed_again"] is None  # written by the first run
    assert blocks[1]["wlmd_no_cache"] is None  # left out: the cache was there
    # the first run put the 1 % it changed back after the cache was last written:
    # exactly those are parsed again, nothing else
    assert [s["parsed_again"] for s in blocks[1]["wlmd_restart"]] == [N // 100]
    assert blocks[1]["wlmd_restart"][0]["matches"] == 1
    assert "first start, no cache (s)" in proc.stdout


def test_restart_bench_cache_takes_one_size() -> None:
    argv = [sys.executable, str(REPO_ROOT / "bench" / "restart.py"), "--sizes", "300,600"]
    proc = subprocess.run([*argv, "--cache", "/nonexistent/c"], capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 2 and "--cache takes one size" in proc.stderr
