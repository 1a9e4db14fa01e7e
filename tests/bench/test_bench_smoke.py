"""bench/run.py stays runnable: ``--quick`` end to end, plus its generated worklist files.

The quick run (N=200) measures wlmd and DCMTK's wlmscpfs on the same generated
database, once in this tree and once in an exported copy without ``.git`` and
``.venv`` (a release tarball: bench/run.py must not need git). The tests check that
every metric is there for both servers, that nothing failed, what revision the
report names, and — a cheap differential check — that both servers answered every
selective query with the same matches (count and Patient IDs).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pydicom import dcmread

from tests.helpers import servers
from tests.helpers.dcmtk import require_dcmtk
from tests.helpers.tree import export_tree
from tests.helpers.worklists import SPS_KEYWORDS, complete_entry
from wlmd import __version__

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH = REPO_ROOT / "bench"
KINDS = ("patient_id", "accession", "station_today", "modality_range", "name_wildcard")
#: Every number the table reports, by its path in a server's result.
METRICS = [
    ("startup", "ready_ms"),
    ("startup", "first_query_ms"),
    ("association_setup", "median_ms"),
    ("association_setup", "p95_ms"),
    *[("queries", kind, stat) for kind in KINDS for stat in ("median_ms", "p95_ms")],
    ("match_all", "median_ms"),
    ("match_all", "p95_ms"),
    ("throughput", "8", "qps"),
    ("throughput", "50", "qps"),
    *[
        ("memory", where, stat)
        for where in ("supervisor_at_ready", "supervisor_end", "worker")
        for stat in ("rss_mb", "hwm_mb", "pss_mb", "private_mb")
    ],
    ("visibility_new", "median_ms"),
    ("visibility_changed", "median_ms"),
]
N = 200


def _get(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def quick_run(root: Path, tmp: Path) -> dict:
    """``ROOT/bench/run.py --quick`` with ROOT as working directory; its JSON report."""
    require_dcmtk("wlmscpfs")
    out = tmp / "quick.json"
    argv = [
        sys.executable,
        str(root / "bench" / "run.py"),
        "--quick",
        "--json",
        str(out),
        "--workdir",
        str(tmp / "work"),
    ]
    if not servers.netns_available():
        argv.append("--allow-all-interfaces")
    started = time.monotonic()
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(root),
        stdin=subprocess.DEVNULL,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, (
        f"bench/run.py --quick exited with {proc.returncode}\n"
        f"--- stdout ---\n{proc.stdout[-3000:]}\n--- stderr ---\n{proc.stderr[-5000:]}"
    )
    assert elapsed < 60, f"--quick took {elapsed:.0f}s (budget 60s)\n{proc.stderr[-3000:]}"
    assert "wlmd/wlmscpfs" in proc.stdout  # the table with the ratio column
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> dict:
    """The quick run in this tree (a git checkout, or whatever the suite runs from)."""
    return quick_run(REPO_ROOT, tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="module")
def exported_report(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> dict:
    """The quick run in an exported copy of the tree: no .git, no .venv (a tarball)."""
    tmp = tmp_path_factory.mktemp("bench-export")
    return quick_run(export_tree(tmp / "wlmd-export"), tmp)


def check_every_metric(report: dict) -> None:
    machine = report["machine"]
    for key in ("nproc", "cpu_model", "kernel", "python_wlmd", "dcmtk", "wlmd_commit", "date"):
        assert machine.get(key), f"machine info lacks {key}"
    block = report["sizes"][str(N)]
    assert block["database"]["files"] == N
    results = block["servers"]
    assert set(results) == {"wlmd", "wlmscpfs"}
    for name, result in results.items():
        assert result["errors"] == [], f"{name}: {result['errors']}"
        missing = [p for p in METRICS if not isinstance(_get(result, p), int | float)]
        assert not missing, f"{name}: no value for {missing}"
        assert result["failures_total"] == 0, f"{name}: failures\n{json.dumps(result)[:4000]}"
        for kind in (*KINDS, "match_all"):
            series = result["queries"].get(kind) if kind in KINDS else result["match_all"]
            assert series["samples"] >= 1 and series["failures"] == 0, (name, kind, series)
        for level, run in result["throughput"].items():
            assert run["completed"] > 0, (name, level, run)
            assert run["failures"] == 0 and run["timeouts"] == 0, (name, level, run)
        for kind in ("visibility_new", "visibility_changed"):
            assert result[kind]["samples"] >= 1, (name, kind, result[kind])
        assert result["match_all"]["answers"][0]["matches"] == N
        assert result["stop"]["killed"] is False, f"{name} ignored SIGTERM"
    ratios = block["ratios"]["wlmd/wlmscpfs"]
    assert ratios["patient_id median (ms)"] is not None


@pytest.mark.dcmtk
def test_quick_run_has_every_metric_for_both_servers(quick_report: dict) -> None:
    check_every_metric(quick_report)
    machine = quick_report["machine"]
    if (REPO_ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}", machine["wlmd_commit"]), machine["wlmd_commit"]
        assert isinstance(machine["wlmd_tree_dirty"], bool), machine


@pytest.mark.dcmtk
def test_quick_run_from_an_exported_tree(exported_report: dict) -> None:
    """Issue 11 item 12: outside a git checkout the run works and says what it measured."""
    check_every_metric(exported_report)
    machine = exported_report["machine"]
    assert machine["wlmd_commit"] == f"unknown (wlmd {__version__}, not a git checkout)", machine
    assert machine["wlmd_tree_dirty"] is None, machine


@pytest.mark.dcmtk
def test_quick_run_both_servers_give_the_same_answers(quick_report: dict) -> None:
    results = quick_report["sizes"][str(N)]["servers"]
    wlmd, dcmtk = results["wlmd"]["queries"], results["wlmscpfs"]["queries"]
    total = 0
    for kind in KINDS:
        ours, theirs = wlmd[kind]["answers"], dcmtk[kind]["answers"]
        assert ours and theirs, kind
        for a, b in zip(ours, theirs, strict=False):
            assert a["query"] == b["query"]
            assert (a["matches"], a["patient_ids"]) == (b["matches"], b["patient_ids"]), (
                f"{kind} {a['query']}: wlmd {a['matches']} {a['patient_ids']}, "
                f"wlmscpfs {b['matches']} {b['patient_ids']}"
            )
            total += a["matches"]
    assert total > 0, "no selective query matched anything: the queries are not from the data"


def test_generated_files_are_complete_and_reproducible(tmp_path: Path) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        import mwlgen
    finally:
        sys.path.remove(str(BENCH))
    base = dt.date(2030, 5, 14)
    db = mwlgen.ensure_database(tmp_path / "a", 60, 7, base)
    again = mwlgen.ensure_database(tmp_path / "b", 60, 7, base)
    assert db.generated_s is not None
    assert mwlgen.ensure_database(tmp_path / "a", 60, 7, base).generated_s is None  # cached
    assert (db.area / "lockfile").is_file()
    files = sorted(db.area.glob("*.wl"))
    assert len(files) == 60
    assert [f.read_bytes() for f in files] == [
        f.read_bytes() for f in sorted(again.area.glob("*.wl"))
    ]
    reference = complete_entry()
    top = {e.keyword for e in reference if e.keyword != "SpecificCharacterSet"}
    sps = {e.keyword for e in reference.ScheduledProcedureStepSequence[0]}
    assert sps <= SPS_KEYWORDS
    charsets: set[str | None] = set()
    for path in files:
        ds = dcmread(path)
        assert top <= {e.keyword for e in ds}, f"{path.name} lacks {top - set(ds.dir())}"
        item = ds.ScheduledProcedureStepSequence[0]
        assert sps <= {e.keyword for e in item}, path.name
        charsets.add(ds.get("SpecificCharacterSet"))
        family, given = str(ds.PatientName).split("^")
        assert family and given
        assert (
            abs(
                (
                    dt.datetime.strptime(item.ScheduledProcedureStepStartDate, "%Y%m%d").date()
                    - base
                ).days
            )
            <= 30
        )
    assert charsets == {None, "ISO_IR 100", "ISO_IR 192"}
    assert len({dcmread(f).PatientID for f in files}) == 60
    assert len({dcmread(f).AccessionNumber for f in files}) == 60
