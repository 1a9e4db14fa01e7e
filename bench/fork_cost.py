"""fork() cost against the size of the forking process (issue 16: a 2.7 GB supervisor).

The supervisor forks every worker, spare and snapshot-cache writer; fork()
copies the page tables of the whole address space (~2 MB per GB), and the
supervisor's loop waits for it. This grows a Python process to each
``--sizes`` (RSS, GB) with small dicts of bytes (what worklist entries are
made of), ``gc.freeze()``s them as the supervisor does, and times, median of
``--repeat``: fork() returning in the parent, and fork + the child's
``_exit`` + waitpid (the child's teardown of the same page tables).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="0.3,1.0,2.7", help="RSS targets, GB")
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    held = []
    print(f"{'RSS (MB)':>9}  {'fork() (ms)':>12}  {'fork+exit+wait (ms)':>20}")
    for target in (float(s) for s in args.sizes.split(",")):
        while rss_mb() < target * 1024:
            held.append([{f"k{i}": b"x" * 40 for i in range(8)} for _ in range(10_000)])
        gc.freeze()
        forked, waited = [], []
        for _ in range(args.repeat):
            started = time.perf_counter()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - child
                os._exit(0)
            forked.append(time.perf_counter() - started)
            os.waitpid(pid, 0)
            waited.append(time.perf_counter() - started)
        print(
            f"{rss_mb():9.0f}  {statistics.median(forked) * 1000:12.2f}"
            f"  {statistics.median(waited) * 1000:20.2f}"
        )


if __name__ == "__main__":
    main()
