"""UPS SCP figures (issue 13's targets): selective C-FIND over N steps and claims, one association.

No other UPS SCP is on this machine to run beside wlmd (wlmscpfs has no UPS),
so the figures are absolute, with the targets next to them:

* selective UPS C-FIND (PatientID, one match) among ``--steps`` scheduled
  steps: median <= 10 ms at 10,000;
* a claim (N-ACTION Change State to IN PROGRESS) on an open association:
  median <= 5 ms.

Times are the client's, C-FIND-RQ / N-ACTION-RQ sent until the final response
received, with bench/upsclient.py (pynetdicom's codecs, no threads). The steps
are written straight into a fresh SQLite state store through wlmd's own
repository before the server starts (10,000 take about a minute: each create
is one fsynced transaction, as over the network).

    python bench/ups.py --steps 10000 --queries 200 --claims 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydicom.dataset import Dataset

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import upsclient  # noqa: E402
from run import Variant, start_server, stop_server  # noqa: E402

from wlmd.state import open_store  # noqa: E402

PUSH = "1.2.840.10008.5.1.4.34.6.1"
PULL = "1.2.840.10008.5.1.4.34.6.3"
QUERY = "1.2.840.10008.5.1.4.34.6.5"
MODALITIES = ("CT", "MR", "US", "CR", "DX", "MG", "NM", "XA")


def step(number: int) -> Dataset:
    ds = Dataset()
    ds.PatientName = f"Bench^{number:06d}"
    ds.PatientID = f"UPS{number:06d}"
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = f"{MODALITIES[number % len(MODALITIES)]} study"
    ds.WorklistLabel = MODALITIES[number % len(MODALITIES)]
    day = 1 + number % 28
    ds.ScheduledProcedureStepStartDateTime = f"203001{day:02d}{8 + number % 10:02d}0000"
    ds.InputReadinessState = "READY"
    return ds


def populate(location: str, steps: int) -> list[str]:
    store = open_store(location)
    uids = []
    started = time.monotonic()
    for number in range(steps):
        result = store.create(None, step(number))
        assert not result.failed, hex(result.status)
        uids.append(result.uid)
    store.close()
    print(f"created {steps} steps in {time.monotonic() - started:.1f} s", file=sys.stderr)
    return uids


def summary(name: str, samples: list[float], target: float) -> str:
    median = statistics.median(samples)
    p95 = sorted(samples)[int(len(samples) * 0.95) - 1]
    verdict = "met" if median <= target else "NOT met"
    return (
        f"{name:<44} n={len(samples):<5} median {median:7.2f} ms  p95 {p95:7.2f} ms  "
        f"(target median <= {target:g} ms: {verdict})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wlmd-bench-ups-"))
    (work / "wl").mkdir()
    location = str(work / "state.db")
    uids = populate(location, args.steps)
    variant = Variant("wlmd", "wlmd", ("--ups-ae-title", "UPS", "--state-store", location))
    server = start_server(variant, work / "wl", work / "wlmd.log", args.timeout)
    try:
        client = upsclient.DcmupsLike(server.port, (PUSH, PULL, QUERY), calling="BENCH")
        finds = []
        for n in range(args.queries):
            query = Dataset()
            query.PatientID = f"UPS{(n * 7919) % args.steps:06d}"
            query.ProcedureStepState = ""
            query.SOPInstanceUID = ""
            query.ScheduledProcedureStepStartDateTime = ""
            started = time.perf_counter()
            response = client.request("C_FIND", QUERY, query, AffectedSOPClassUID=QUERY, Priority=2)
            finds.append((time.perf_counter() - started) * 1000)
            assert response.status == 0 and len(client.pending) == 1, (response.status, n)
        claims = []
        for n in range(min(args.claims, args.steps)):
            info = Dataset()
            info.ProcedureStepState = "IN PROGRESS"
            info.TransactionUID = f"2.25.{1000 + n}"
            started = time.perf_counter()
            response = client.request(
                "N_ACTION",
                PULL,
                info,
                RequestedSOPClassUID=PUSH,
                RequestedSOPInstanceUID=uids[n],
                ActionTypeID=1,
            )
            claims.append((time.perf_counter() - started) * 1000)
            assert response.status == 0, hex(response.status)
        client.release()
    finally:
        stop_server(server)
    print(f"wlmd UPS, {args.steps} scheduled steps, SQLite state store, one association")
    print(summary("selective C-FIND (PatientID, 1 match)", finds, 10.0))
    print(summary("claim (N-ACTION change state)", claims, 5.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
