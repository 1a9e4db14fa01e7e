"""bench/run.py's per-server caps for wlmscpfs and the ``--scale`` profile (issue 16 item 4).

At 1,000,000 entries wlmscpfs reads and matches every file for every query (~30 s
each), so ``--scale`` caps its samples and leaves out its poll/open-association and
throughput series. A small real run (N=200, wlmd and wlmscpfs over TCP) checks
that the caps reach wlmscpfs only, that a skipped phase is absent (not a zero
that would read as a measurement) and that a misspelt phase stops the run before
any server starts.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import require_dcmtk

REPO_ROOT = Path(__file__).resolve().parents[2]
RUN = REPO_ROOT / "bench" / "run.py"
KINDS = ("patient_id", "accession", "station_today", "modality_range", "name_wildcard")
N = 200


def _run(argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(REPO_ROOT),
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.mark.dcmtk
def test_wlmscpfs_caps_apply_to_wlmscpfs_only(tmp_path: Path) -> None:
    require_dcmtk("wlmscpfs")
    out = tmp_path / "caps.json"
    # A short work directory: the notify socket's path must fit sun_path (108 bytes).
    with tempfile.TemporaryDirectory(prefix="bc-", dir="/tmp") as work:
        argv = ["--quick", "--repeat", "3", "--repeat-all", "2", "--visibility-repeat", "2"]
        argv += ["--wlmscpfs-repeat", "1", "--wlmscpfs-repeat-all", "1"]
        argv += ["--wlmscpfs-visibility-repeat", "1", "--wlmscpfs-skip", "poll,throughput"]
        argv += ["--json", str(out), "--workdir", work]
        if not servers.netns_available():
            argv.append("--allow-all-interfaces")
        proc = _run(argv, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    results = json.loads(out.read_text())["sizes"][str(N)]["servers"]
    wlmd, ref = results["wlmd"], results["wlmscpfs"]
    for kind in KINDS:
        assert wlmd["queries"][kind]["samples"] == 3, kind
        assert ref["queries"][kind]["samples"] == 1, kind
    assert (wlmd["match_all"]["samples"], ref["match_all"]["samples"]) == (2, 1)
    assert ref["match_all"]["answers"][0]["matches"] == N
    for kind in ("visibility_new", "visibility_changed"):
        assert (wlmd[kind]["samples"], ref[kind]["samples"]) == (2, 1), kind
    assert wlmd["poll_cycle"]["samples"] > 0 and wlmd["open_find"]["samples"] > 0
    assert set(wlmd["throughput"]) == {"8", "50"}
    assert "poll_cycle" not in ref and "open_find" not in ref
    assert ref["throughput"] == {}
    assert ref["echo"]["assoc_per_s"] > 0  # not skipped: no query in it
    assert ref["samples_asked"] == {
        "repeat": 1,
        "repeat_all": 1,
        "visibility_repeat": 1,
        "skipped": ["poll", "throughput"],
    }
    assert wlmd["samples_asked"]["skipped"] == []
    assert wlmd["failures_total"] == ref["failures_total"] == 0
    poll_row = next(line for line in proc.stdout.splitlines() if line.startswith("poll cycle med"))
    assert poll_row.split()[-2:] == ["-", "-"]  # wlmscpfs and the ratio: not measured


def test_unknown_skipped_phase_stops_the_run() -> None:
    proc = _run(["--quick", "--wlmscpfs-skip", "poll,thruput"], timeout=60)
    assert proc.returncode == 2
    assert "--wlmscpfs-skip: unknown phases ['thruput']" in proc.stderr
    assert "starting" not in proc.stderr


def test_scale_profile_and_overrides() -> None:
    sys.path.insert(0, str(REPO_ROOT / "bench"))
    try:
        import run  # bench/run.py
    finally:
        sys.path.remove(str(REPO_ROOT / "bench"))
    args = run.parse_args(["--scale"])
    assert args.sizes == "1000000"
    assert (args.wlmscpfs_repeat, args.wlmscpfs_repeat_all) == (2, 1)
    assert args.wlmscpfs_skip == "poll,throughput,visibility"
    assert args.start_timeout >= 1200  # wlmd's first full parse at 1M: ~8-14 min
    args = run.parse_args(["--scale", "--sizes", "5000", "--wlmscpfs-repeat", "4"])
    assert (args.sizes, args.wlmscpfs_repeat) == ("5000", 4)
