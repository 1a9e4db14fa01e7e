"""The worklist index's per-change cost at 100,000 and 1,000,000 entries, in process.

Issue 16: at 1,000,000 entries a changed file took 539 ms to become visible
(30 ms at 100,000) and a restart after 10,000 changed files 6-7 ms a file.
A server run at that size means a 25-minute parse; this script measures the
index alone: N synthetic entries (the values of ``bench/mwlgen.py``'s
database, built in memory, no files), indexed by the index of this tree and,
side by side in the same process, by a reference :class:`AreaIndex` loaded
from another commit's ``wlmd/worklist/index.py`` (``--reference main``),
restored from the same export so both hold the same state.

Timed, for each N and each index (medians of ``--repeat`` samples):

- add one new entry / remove it / replace one entry (same name, new values),
  in the process that built the index and in a forked child (where every page
  written is first copied: the spare worker that serves the first query after
  a change);
- 10,000 replacements in a row (a restart after 10,000 changed files);
- ``ordered()`` after a change; ``candidates()`` for the selective probes of
  run.py's queries, ``export()`` and ``restore()`` (median of 3), these with
  the indexes taking turns sample by sample.

Candidate lists of both indexes are compared after the changes (same entries,
same order): the bench also checks the rewrite changed nothing visible.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
for path in (ROOT, BENCH_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import mwlgen  # noqa: E402

from wlmd.worklist import index as current  # noqa: E402
from wlmd.worklist import keys  # noqa: E402
from wlmd.worklist.entry import WorklistEntry  # noqa: E402
from wlmd.worklist.match import Probe  # noqa: E402

BASE = dt.date(2030, 5, 10)
CHARSETS = {"ascii": "", "latin1": "ISO_IR 100", "utf8": "ISO_IR 192"}


def entry_of(values: mwlgen.Entry, name: str | None = None) -> WorklistEntry:
    """The matching keys of one mwlgen entry as a WorklistEntry (what the index reads)."""
    enc = values.encoding
    sps = {
        keys.MODALITY: values.modality.encode(),
        keys.SCHEDULED_STATION_AE_TITLE: values.station.encode(),
        keys.SPS_START_DATE: values.date.encode(),
        keys.SPS_START_TIME: values.time.encode(),
    }
    elements: dict[int, Any] = {
        keys.PATIENT_NAME: values.patient_name.encode(enc),
        keys.PATIENT_ID: values.patient_id.encode(),
        keys.tag("AccessionNumber"): values.accession.encode(),
        keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE: [sps],
    }
    charset = CHARSETS[values.group]
    if charset:
        elements[keys.SPECIFIC_CHARACTER_SET] = charset.encode()
    return WorklistEntry(name or values.file_name, elements, charset, None)


def reference_module(rev: str) -> ModuleType:
    """``wlmd/worklist/index.py`` as it is at ``rev``, imported under another name."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:wlmd/worklist/index.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(source)
    spec = importlib.util.spec_from_file_location("reference_index", handle.name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    os.unlink(handle.name)
    return module


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def in_child(action: Callable[[], float], timeout: float = 120.0) -> float:
    """``action()``'s figure, measured in a forked child (copy-on-write pages)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_end)
        try:
            os.write(write_end, repr(action()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        chunk = os.read(read_end, 100)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return float(data)


def probes(sample: mwlgen.Entry) -> dict[str, list[Probe]]:
    """run.py's selective queries, as the probes the matcher would derive."""
    sps = True
    return {
        "patient_id": [Probe(keys.PATIENT_ID, "LO", False, "equals", (sample.patient_id,))],
        "station_today": [
            Probe(keys.SCHEDULED_STATION_AE_TITLE, "AE", sps, "equals", (sample.station,)),
            Probe(keys.SPS_START_DATE, "DA", sps, "date", (sample.date,)),
        ],
        "modality_range": [
            Probe(keys.MODALITY, "CS", sps, "equals", (sample.modality,)),
            Probe(keys.SPS_START_DATE, "DA", sps, "date", (f"{sample.date}-{sample.date}",)),
        ],
        "name_prefix": [
            Probe(keys.PATIENT_NAME, "PN", False, "prefix", (sample.patient_name[:4],))
        ],
    }


def measure(
    index: Any, cls: Any, size: int, repeat: int, batch: int, seed: int
) -> dict[str, float]:
    """The figures of one index holding ``size`` entries."""
    rng = random.Random(seed)
    out: dict[str, float] = {}
    fresh = [entry_of(mwlgen.make_entry(seed + 1, size + k, BASE)) for k in range(repeat)]
    adds, removes = [], []
    for entry in fresh:
        adds.append(timed(lambda e=entry: index.add(e)))
        removes.append(timed(lambda e=entry: index.remove(e)))
    out["add one (ms)"] = median_ms(adds)
    out["remove one (ms)"] = median_ms(removes)

    def replace_one() -> float:
        k = rng.randrange(size)
        changed = entry_of(mwlgen.make_entry(seed + 2, k, BASE), f"wl{k:07d}.wl")
        return timed(lambda: index.add(changed))

    out["replace one (ms)"] = median_ms([replace_one() for _ in range(repeat)])
    out["replace one, forked child (ms)"] = median_ms(
        [in_child(replace_one) for _ in range(max(3, repeat // 20))]
    )
    out["replace one + ordered(), forked child (ms)"] = median_ms(
        [in_child(lambda: replace_one() + timed(index.ordered)) for _ in range(3)]
    )
    changes = [
        entry_of(mwlgen.make_entry(seed + 3, k, BASE), f"wl{k:07d}.wl")
        for k in rng.sample(range(size), batch)
    ]
    out[f"replace {batch:,} (ms per change)"] = (
        timed(lambda: [index.add(e) for e in changes]) * 1000 / batch
    )
    index.ordered()
    out["ordered() after one change (ms)"] = median_ms(
        [replace_one() * 0 + timed(index.ordered) for _ in range(3)]
    )
    return out


def measure_lookups(
    indexes: list[tuple[str, Any, Any]], size: int, repeat: int, seed: int
) -> dict[str, dict[str, float]]:
    """candidates(), export() and restore(), the indexes taking turns sample by sample
    (so that a change of the machine's load falls on both)."""
    samples: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in indexes}
    queries = probes(mwlgen.make_entry(seed, size // 2, BASE))
    for _ in range(max(5, repeat // 4)):
        for label, index, _ in indexes:
            for name, query in queries.items():
                row = f"candidates {name} (ms)"
                samples[label].setdefault(row, []).append(
                    timed(lambda i=index, q=query: i.candidates(q))
                )
    for _ in range(3):
        for label, index, cls in indexes:
            started = time.perf_counter()
            state = index.export()
            exported = time.perf_counter()
            cls.restore(state, dict(index.by_name))
            restored = time.perf_counter()
            samples[label].setdefault("export (ms)", []).append(exported - started)
            samples[label].setdefault("restore (ms)", []).append(restored - exported)
            del state
    return {
        label: {row: median_ms(values) for row, values in rows.items()}
        for label, rows in samples.items()
    }


def answers(index: Any, size: int, seed: int) -> list[list[str]]:
    got = []
    for k in range(0, size, max(1, size // 5)):
        for query in probes(mwlgen.make_entry(seed, k, BASE)).values():
            found = index.candidates(query)
            got.append(None if found is None else [e.name for e in found])
    return got


def run_size(size: int, reference: ModuleType | None, args: argparse.Namespace) -> None:
    started = time.monotonic()
    built = current.AreaIndex()
    for k in range(size):
        built.add(entry_of(mwlgen.make_entry(args.seed, k, BASE)))
    gc.freeze()
    print(f"N={size:,}: built in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    indexes: list[tuple[str, Any, Any]] = [("this tree", built, current.AreaIndex)]
    if reference is not None:
        ref = reference.AreaIndex.restore(built.export(), dict(built.by_name))
        gc.freeze()  # as the supervisor does after loading
        indexes.append((f"reference {args.reference}", ref, reference.AreaIndex))
    results = {}
    for label, index, cls in indexes:
        results[label] = measure(index, cls, size, args.repeat, args.batch, args.seed)
        print(f"  {label}: measured", file=sys.stderr, flush=True)
    for label, figures in measure_lookups(indexes, size, args.repeat, args.seed).items():
        results[label].update(figures)
    if reference is not None:
        mine, theirs = (answers(index, size, args.seed) for _, index, _ in indexes)
        # Both saw the same changes in the same order (same seeds), so they must agree.
        assert mine == theirs, "the indexes' candidates differ"
    labels = list(results)
    print(f"\nN={size:,}" + "".join(f"  {label:>18}" for label in labels) + "   ratio")
    for row in results[labels[0]]:
        figures = [results[label][row] for label in labels]
        ratio = f"{figures[0] / figures[1]:8.3f}" if len(figures) == 2 and figures[1] else ""
        print(f"{row:44}" + "".join(f"  {f:18.4f}" for f in figures) + f"  {ratio}")
    del indexes, built
    gc.unfreeze()
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--reference", default="main", help="git rev of the reference index")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    reference = None if args.no_reference else reference_module(args.reference)
    for size in (int(s) for s in args.sizes.split(",")):
        run_size(size, reference, args)


if __name__ == "__main__":
    main()
