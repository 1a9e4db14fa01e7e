"""Restart → first answered selective query: wlmd with its snapshot cache beside wlmscpfs.

Issue 16, item 1: a ``systemctl restart`` must not hold a large department's
modalities longer than wlmscpfs needs for one query. For each N this
benchmark, on the databases of ``bench/mwlgen.py`` (shared with run.py):

1. starts wlmd with ``--snapshot-cache FILE`` and no file yet (a full parse,
   the time every start took before the cache), waits for the cache writer's
   log line, stops it (with ``--cache FILE`` and FILE present, this start is
   left out and the restarts use FILE: a cache kept from an earlier run);
2. ``--repeat`` times, alternately: wlmd restarted on the cache, and
   wlmscpfs started cold (own network namespace, ``TCP_NODELAY=1``, as
   run.py); each timed from spawn to the final response of a PatientID
   C-FIND on a fresh association (the query waits in the listen backlog
   while wlmd loads, as a modality's would);
3. ``--repeat`` times: ``--changed-percent`` of the files rewritten (new
   PatientIDs, lockfile protocol) while no server runs, then wlmd and
   wlmscpfs timed the same way with a query for one of the new PatientIDs,
   which must match exactly once in both answers. Between rounds an
   untimed restart lets the cache catch up (files changed within 3 s of a
   scan are parsed again at the next start, see wlmd/worklist/area.py).

The changed files get their original content back at the end (the database
stays reusable). Output: a table per N and a JSON file with every sample.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import run  # noqa: E402  (bench/run.py: servers, namespaces, machine information)
from mwlclient import Association, identifier  # noqa: E402

mwlgen = run.mwlgen
WRITER_TIMEOUT = 120.0


def first_answer(server: run.Server, keys: dict[str, str], io_timeout: float) -> dict[str, Any]:
    """One C-FIND on a fresh association; spawn → final response, and the match count."""
    with (
        run.in_netns(server.netns_pid),
        Association.open(
            "127.0.0.1", server.port, run.AREA, run.CALLING, io_timeout=io_timeout
        ) as assoc,
    ):
        result = assoc.find(identifier(keys), deadline_s=io_timeout)
        assoc.release()
    return {
        "first_answer_s": round(time.perf_counter() - server.spawned, 3),
        "ready_s": round(server.ready_s, 3),
        "matches": result.matches,
        "status": result.status,
    }


def wait_for_writer(log: Path, count: int) -> bool:
    """Until the log holds ``count`` "snapshot cache ... written" lines (bounded)."""
    deadline = time.monotonic() + WRITER_TIMEOUT
    while time.monotonic() < deadline:
        text = log.read_text("utf-8", "replace") if log.exists() else ""
        if text.count(" written: ") >= count:
            return True
        time.sleep(0.05)  # a log line is the only signal the writer child gives
    return False


class Bench:
    def __init__(self, args: argparse.Namespace, run_dir: Path) -> None:
        self.args = args
        self.run_dir = run_dir
        self.starts = 0

    def start(self, kind: str, db: mwlgen.Database, cache: Path) -> tuple[run.Server, Path]:
        self.starts += 1
        options: tuple[str, ...] = ()
        if kind == "wlmd":
            options = ("-v", "--snapshot-cache", str(cache), *self.args.wlmd_option)
        variant = run.Variant(kind, kind, options)
        log = self.run_dir / f"{db.n}-{self.starts:03d}-{kind}.log"
        return run.start_server(variant, db.root, log, self.args.start_timeout), log

    def timed(
        self, kind: str, db: mwlgen.Database, cache: Path, keys: dict[str, str], writer: bool
    ) -> dict[str, Any]:
        """Start, one query, (wait for the cache writer), stop."""
        server, log = self.start(kind, db, cache)
        try:
            sample = first_answer(server, keys, self.args.io_timeout)
            text = log.read_text("utf-8", "replace")
            found = re.search(r"(\d+) of (\d+) worklist files parsed again", text)
            if writer and kind == "wlmd" and (found is None or found.group(1) != "0"):
                sample["cache_written"] = wait_for_writer(log, 1)  # only if something changed
        finally:
            run.stop_server(server)
        if kind == "wlmd":
            text = log.read_text("utf-8", "replace")
            sample["parsed_again"] = int(found.group(1)) if found else None
            loaded = re.search(r"snapshot loaded: \d+ worklist entries in ([\d.]+) s", text)
            sample["load_s"] = float(loaded.group(1)) if loaded else None
        return sample

    def size(self, n: int) -> dict[str, Any]:
        db = mwlgen.ensure_database(
            self.args.workdir, n, self.args.seed, dt.date.today(), run.progress
        )
        if db.generated_s is not None:
            # Just generated: files younger than the cache's racy margin (3 s) when the
            # first wlmd scans them would be parsed again by every restart until then.
            time.sleep(3.2)  # letting files age; not synchronisation
        cache = self.args.cache or self.run_dir / f"cache-{n}" / "worklist.snapshot"
        cache.parent.mkdir(parents=True, exist_ok=True)
        keys = db.queries["patient_id"][0]
        block: dict[str, Any] = {"n": n, "files_bytes": db.file_bytes}
        if self.args.cache is not None and cache.exists():
            run.progress(f"N={n}: restarting on {cache} (no first start without a cache)")
            block["wlmd_no_cache"] = None
        else:
            run.progress(f"N={n}: wlmd without a cache (full parse), then the cache is written")
            block["wlmd_no_cache"] = self.timed("wlmd", db, cache, keys, writer=True)
        restart: list[dict[str, Any]] = []
        cold: list[dict[str, Any]] = []
        for r in range(self.args.repeat):
            run.progress(f"N={n}: restart {r + 1}/{self.args.repeat}")
            restart.append(self.timed("wlmd", db, cache, keys, writer=False))
            cold.append(self.timed("wlmscpfs", db, cache, keys, writer=False))
        block["wlmd_restart"] = restart
        block["wlmscpfs_cold"] = cold
        block["changed"] = self.changed_rounds(db, cache)
        return block

    def changed_rounds(self, db: mwlgen.Database, cache: Path) -> list[dict[str, Any]]:
        count = max(1, db.n * self.args.changed_percent // 100)
        originals: dict[str, bytes] = {}
        rounds = []
        (db.root / mwlgen.DIRTY).touch()
        try:
            for r in range(self.args.repeat):
                indexes = [(db.n // 7 + r * count + k * 97) % db.n for k in range(count)]
                new_ids = []
                for index in indexes:
                    entry = mwlgen.make_entry(db.seed, index, db.base)
                    name = entry.file_name
                    originals.setdefault(name, (db.area / name).read_bytes())
                    entry.patient_id = f"CH{r:02d}{index:07d}"
                    new_ids.append(entry.patient_id)
                    mwlgen.put_file(db.area, name, mwlgen.encode_entry(entry))
                keys = {"PatientID": new_ids[len(new_ids) // 2]}
                run.progress(f"N={db.n}: {count} files changed while stopped, round {r + 1}")
                sample = {
                    "changed_files": count,
                    "wlmd": self.timed("wlmd", db, cache, keys, writer=True),
                    "wlmscpfs": self.timed("wlmscpfs", db, cache, keys, writer=False),
                }
                rounds.append(sample)
                # Untimed: this round's files are "racy" in the cache just written.
                time.sleep(3.2)  # the cache's racy margin must pass; not synchronisation
                self.timed("wlmd", db, cache, keys, writer=True)
        finally:
            for name, data in originals.items():
                mwlgen.put_file(db.area, name, data)
            (db.root / mwlgen.DIRTY).unlink(missing_ok=True)
        return rounds


def _median(samples: list[dict[str, Any]], key: str) -> float | None:
    values = [s[key] for s in samples if s.get(key) is not None]
    return statistics.median(values) if values else None


def table(block: dict[str, Any]) -> str:
    n = block["n"]
    rows: list[tuple[str, float | None, float | None]] = []
    no_cache = block["wlmd_no_cache"]
    rows.append(("first start, no cache (s)", no_cache and no_cache["first_answer_s"], None))
    rows.append(
        (
            "restart → first answer, median (s)",
            _median(block["wlmd_restart"], "first_answer_s"),
            _median(block["wlmscpfs_cold"], "first_answer_s"),
        )
    )
    rows.append(
        (
            "restart → first answer, worst (s)",
            max(s["first_answer_s"] for s in block["wlmd_restart"]),
            max(s["first_answer_s"] for s in block["wlmscpfs_cold"]),
        )
    )
    wl = [r["wlmd"] for r in block["changed"]]
    wc = [r["wlmscpfs"] for r in block["changed"]]
    changed = block["changed"][0]["changed_files"] if block["changed"] else 0
    rows.append(
        (
            f"{changed} files changed: first answer, median (s)",
            _median(wl, "first_answer_s"),
            _median(wc, "first_answer_s"),
        )
    )
    rows.append(
        (
            f"{changed} files changed: worst (s)",
            max((s["first_answer_s"] for s in wl), default=None),
            max((s["first_answer_s"] for s in wc), default=None),
        )
    )
    lines = [f"N={n:,}".ljust(44) + "wlmd".rjust(9) + "wlmscpfs".rjust(10) + "ratio".rjust(8)]
    lines.append("-" * 71)
    for label, a, b in rows:
        ratio = f"{a / b:.2f}" if a is not None and b else "-"
        lines.append(
            label.ljust(44)
            + (f"{a:.2f}" if a is not None else "-").rjust(9)
            + (f"{b:.2f}" if b is not None else "-").rjust(10)
            + ratio.rjust(8)
        )
    parsed = [s.get("parsed_again") for s in block["wlmd_restart"]]
    parsed_changed = [s.get("parsed_again") for s in wl]
    matches = [(s["matches"], c["matches"]) for s, c in zip(wl, wc, strict=True)]
    lines.append(f"files parsed again: restarts {parsed}, after changes {parsed_changed}")
    lines.append(f"matches of a changed PatientID (wlmd, wlmscpfs): {matches}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="50000,100000")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--changed-percent", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--workdir", type=Path, default=run.DEFAULT_WORKDIR)
    p.add_argument("--start-timeout", type=float, default=600.0)
    p.add_argument("--io-timeout", type=float, default=120.0)
    p.add_argument("--wlmd-option", action="append", default=[], help="added to wlmd's options")
    p.add_argument("--json", type=Path)
    p.add_argument("--cache", type=Path, metavar="FILE",
        help="the snapshot cache file to use (one --sizes only); when it exists, the first "
        "start without a cache is left out: at 1,000,000 that full parse takes 10-20 min "
        "and run.py measures it")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the logs and cache files")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    if args.cache is not None and "," in args.sizes:
        print("bench/restart.py: --cache takes one size (--sizes N)", file=sys.stderr)
        return 2
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = args.workdir / "runs" / f"restart-{stamp}-{os.getpid()}"
    run_dir.mkdir(parents=True)
    bench = Bench(args, run_dir)
    report: dict[str, Any] = {
        "benchmark": "bench/restart.py: restart → first answer, wlmd (snapshot cache) vs wlmscpfs",
        "machine": run.machine_info(),
        "settings": {k: str(v) for k, v in vars(args).items()},
        "sizes": {},
    }
    status = 0
    try:
        for n in [int(x) for x in args.sizes.split(",") if x.strip()]:
            block = bench.size(n)
            report["sizes"][str(n)] = block
            print(table(block), flush=True)
            print(flush=True)
    except (run.BenchError, OSError) as exc:
        run.progress(f"stopped: {exc}")
        report["fatal"] = str(exc)
        status = 1
    report["machine"]["loadavg_end"] = os.getloadavg()
    json_path = args.json or run.REPO_ROOT / "bench" / "out" / f"restart-{stamp}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    run.progress(f"JSON: {json_path}")
    if status == 0 and not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        run.progress(f"logs kept in {run_dir}")
    return status


if __name__ == "__main__":
    sys.exit(main())
