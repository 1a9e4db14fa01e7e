"""In-process profile of one C-FIND's data-source work: no sockets, no server.

``run_find`` (search mask check, read lock, index candidates, matching, response
building) and the encoding of every response, exactly as a worker does them,
timed on the databases of :mod:`mwlgen` with the five selective query kinds of
``run.py`` and match-all. It isolates the hot path of :mod:`wlmd.worklist`
from the association layer, so changes to matching and response building can
be measured on a loaded machine (the minimum of the samples is reported; the
median too)::

    .venv/bin/python bench/findprof.py --sizes 1000,10000 [--no-index]
    .venv/bin/python bench/findprof.py --sizes 10000 --profile modality_range

``--profile KIND`` runs that query kind under cProfile and prints the top
functions by cumulative and by own time.

``--phases KIND`` splits that kind's time into its steps (search mask check and
compile, index candidates, matching, response encoding, each with its minor
page faults), in this process and in a child forked from it: first on the
queries it has not touched since the fork (as a spare worker meets them:
copy-on-write faults on every matched entry), then the same queries again::

    .venv/bin/python bench/findprof.py --sizes 100000 --phases modality_range --repeat 20
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import itertools
import os
import pstats
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from pydicom.filereader import read_dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import mwlclient
import mwlgen

from wlmd.worklist.encode import EXPLICIT_LITTLE
from wlmd.worklist.match import compile_mask, probes
from wlmd.worklist.query import FindOptions, run_find
from wlmd.worklist.respbytes import ResponseEncoder
from wlmd.worklist.respond import ResponsePlan
from wlmd.worklist.searchmask import check_search_mask
from wlmd.worklist.store import WorklistStore

KINDS = ("patient_id", "accession", "station_today", "modality_range", "name_wildcard", "all")


def _identifier(keys: dict[str, str]) -> Any:
    """The request as pynetdicom hands it to the handler: raw elements, decoded lazily."""
    data = mwlclient.identifier(keys)
    return read_dataset(io.BytesIO(data), is_implicit_VR=True, is_little_endian=True)


def one_find(area: Any, keys: dict[str, str], options: FindOptions) -> int:
    result = run_find(area, _identifier(keys), "BENCH", options)
    if result.plan is not None:
        encoder = ResponseEncoder(result.plan, EXPLICIT_LITTLE, result.return_charset)
        for entry in result.matches:
            encoder.encode(entry)
    return result.match_count


PHASES = ("mask", "candidates", "match", "encode")


def _faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def find_phases(area: Any, keys: dict[str, str], options: FindOptions) -> list[float]:
    """ms and minor faults of each of PHASES for one query (no lock, no refresh), then matches."""
    marks = [(time.perf_counter(), _faults())]
    mask = check_search_mask(_identifier(keys), options.sq_expansion)
    matcher = compile_mask(mask, options.match)
    marks.append((time.perf_counter(), _faults()))
    candidates = area.candidates(probes(matcher))
    marks.append((time.perf_counter(), _faults()))
    matches = [e for e in candidates if matcher.matches(e)]
    marks.append((time.perf_counter(), _faults()))
    encoder = ResponseEncoder(ResponsePlan(mask), EXPLICIT_LITTLE, options.return_charset)
    for entry in matches:
        encoder.encode(entry)
    marks.append((time.perf_counter(), _faults()))
    out: list[float] = []
    for (t0, f0), (t1, f1) in itertools.pairwise(marks):
        out += [(t1 - t0) * 1000, f1 - f0]
    return [*out, len(matches)]


def _phase_line(label: str, rows: list[list[float]]) -> str:
    med = [statistics.median(r[i] for r in rows) for i in range(len(rows[0]))]
    steps = "  ".join(
        f"{name} {med[2 * i]:6.2f} ms ({med[2 * i + 1]:4.0f} flt)" for i, name in enumerate(PHASES)
    )
    total = sum(med[0 : 2 * len(PHASES) : 2])
    return f"  {label:12s} {steps}  | sum {total:6.2f} ms, {med[-1]:.0f} matches"


def print_phases(
    area: Any, queries: list[dict[str, str]], count: int, options: FindOptions
) -> None:
    """Medians per phase: here (warm), in a fresh fork (cold, then warm again)."""
    chosen = [queries[k % len(queries)] for k in range(count)]
    print(_phase_line("here", [find_phases(area, q, options) for q in chosen]))
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            cold = [find_phases(area, q, options) for q in chosen]
            warm = [find_phases(area, q, options) for q in chosen]
            print(_phase_line("fork, cold", cold))
            print(_phase_line("fork, again", warm))
            sys.stdout.flush()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", default=f"/var/tmp/wlmd-findprof-{os.getuid()}")
    parser.add_argument("--no-index", action="store_true")
    parser.add_argument("--repeat", type=int, default=30, help="samples per selective kind")
    parser.add_argument("--repeat-all", type=int, default=3, help="samples of match-all")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--profile", metavar="KIND", help="cProfile this kind instead")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--phases", metavar="KIND", help="time KIND's steps, also after fork")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    options = FindOptions()
    for n in (int(s) for s in args.sizes.split(",")):
        db = mwlgen.ensure_database(workdir, n, args.seed, dt.date.today(), print)
        store = WorklistStore(str(db.root), use_index=not args.no_index)
        started = time.monotonic()
        store.load_all()
        gc.freeze()  # as the supervisor does before forking: the snapshot is not scanned
        area = store.area(mwlgen.AREA)
        assert area is not None
        loaded = time.monotonic() - started
        print(f"N={n} {'no index' if args.no_index else 'index'}: loaded in {loaded:.1f} s")
        pools: dict[str, list[dict[str, str]]] = dict(db.queries)
        pools["all"] = [{}]
        if args.phases:
            print_phases(area, pools[args.phases], args.repeat, options)
            continue
        if args.profile:
            queries = pools[args.profile]
            count = args.repeat_all if args.profile == "all" else args.repeat
            profiler = cProfile.Profile()
            profiler.enable()
            for k in range(count):
                one_find(area, queries[k % len(queries)], options)
            profiler.disable()
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(args.top)
            stats.sort_stats("tottime").print_stats(args.top)
            continue
        for kind in args.kinds.split(","):
            queries = pools[kind]
            count = args.repeat_all if kind == "all" else args.repeat
            one_find(area, queries[0], options)  # warm caches
            samples = []
            cpu = []
            matches = 0
            for k in range(count):
                t0, c0 = time.perf_counter(), time.process_time()
                matches += one_find(area, queries[k % len(queries)], options)
                samples.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            # CPU time is what this code costs; wall time also has the machine's other load.
            print(
                f"  {kind:15s} cpu median {statistics.median(cpu) * 1000:9.3f} ms"
                f"  min {min(cpu) * 1000:9.3f} ms"
                f"  | wall median {statistics.median(samples) * 1000:9.3f} ms"
                f"  matches/query {matches / count:8.1f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
