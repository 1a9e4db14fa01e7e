"""UPS event fan-out: one state change, N subscribers, until every one has its report.

There is no reference UPS SCP to run side by side (wlmscpfs has no UPS), so the
figures are absolute. wlmd runs from the working tree with ``--ups-ae-title UPS``,
a fresh SQLite state store and a subscriber table naming N event receivers: pynetdicom
acceptors in this process on 127.0.0.1, which accept the Event context only with
role selection SCU=0/SCP=1 (as ``dcmups -L``). All N subscribe globally; then, per
round, a step is created (N State Reports: SCHEDULED) and claimed (N State Reports:
IN PROGRESS). Measured per round, from the N-CREATE / N-ACTION request to the
arrival of the N-th report (the receivers time-stamp on arrival, in this process):
the first and the last arrival. The event sender polls the outbox every 0.1 s, so
up to that is the wait before it sees the change.

    python bench/upsevents.py [--subscribers 50] [--rounds 10] [--json out.json] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian  # noqa: E402
from pynetdicom import AE, evt  # noqa: E402

PUSH = "1.2.840.10008.5.1.4.34.6.1"
WATCH = "1.2.840.10008.5.1.4.34.6.2"
PULL = "1.2.840.10008.5.1.4.34.6.3"
EVENT = "1.2.840.10008.5.1.4.34.6.4"
GLOBAL = "1.2.840.10008.5.1.4.34.5"
TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Arrivals:
    """(UPS instance, state) -> arrival times of its reports, over every receiver."""

    def __init__(self) -> None:
        self.times: dict[tuple[str, str], list[float]] = {}
        self.cond = threading.Condition()

    def handler(self, event: Any) -> tuple[int, None]:
        info = event.event_information
        key = (str(event.request.AffectedSOPInstanceUID), str(info.get("ProcedureStepState", "")))
        with self.cond:
            self.times.setdefault(key, []).append(time.monotonic())
            self.cond.notify_all()
        return 0, None

    def wait(self, key: tuple[str, str], count: int) -> list[float]:
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while len(self.times.get(key, [])) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SystemExit(f"only {len(self.times.get(key, []))} of {count} for {key}")
                self.cond.wait(left)
            return list(self.times[key])


def receivers(count: int, arrivals: Arrivals) -> tuple[list[tuple[str, int]], list[Any]]:
    def requested(event: Any) -> None:
        roles = event.assoc.requestor.role_selection
        role = roles.get(EVENT)
        if role is None or role.scu_role is not False or role.scp_role is not True:
            event.assoc.acceptor.supported_contexts = []

    table, servers = [], []
    for n in range(count):
        ae = AE(ae_title=f"SUB{n:03d}")
        ae.add_supported_context(
            EVENT, [ImplicitVRLittleEndian, ExplicitVRLittleEndian], scu_role=False, scp_role=True
        )
        port = free_port()
        handlers = [(evt.EVT_REQUESTED, requested), (evt.EVT_N_EVENT_REPORT, arrivals.handler)]
        servers.append(ae.start_server(("127.0.0.1", port), block=False, evt_handlers=handlers))
        table.append((f"SUB{n:03d}", port))
    return table, servers


def step() -> Dataset:
    ds = Dataset()
    ds.ProcedureStepState = "SCHEDULED"
    ds.ScheduledProcedureStepPriority = "MEDIUM"
    ds.ProcedureStepLabel = "bench"
    ds.WorklistLabel = "BENCH"
    ds.ScheduledProcedureStepStartDateTime = "20300514093000"
    ds.InputReadinessState = "READY"
    ds.PatientName = "Bench^Patient"
    ds.PatientID = "B1"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    for keyword in ("AdmissionID", "AdmittingDiagnosesDescription"):
        setattr(ds, keyword, "")
    ds.CommentsOnTheScheduledProcedureStep = ""
    for keyword in (
        "IssuerOfAdmissionIDSequence",
        "AdmittingDiagnosesCodeSequence",
        "ReferencedRequestSequence",
        "ScheduledStationNameCodeSequence",
        "ScheduledStationClassCodeSequence",
        "ScheduledStationGeographicLocationCodeSequence",
        "ScheduledWorkitemCodeSequence",
        "ScheduledProcessingParametersSequence",
        "InputInformationSequence",
    ):
        setattr(ds, keyword, [])
    return ds


def wait_ready(notify: socket.socket, proc: subprocess.Popen[bytes]) -> None:
    notify.settimeout(TIMEOUT)
    while b"READY=1" not in notify.recv(4096):
        if proc.poll() is not None:
            raise SystemExit("wlmd exited before READY=1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="keep the work directory (wlmd.log)")
    args = parser.parse_args()

    arrivals = Arrivals()
    table, servers = receivers(args.subscribers, arrivals)
    work = Path(tempfile.mkdtemp(prefix="wlmd-bench-ups-"))
    (work / "wl" / "WLMD").mkdir(parents=True)
    (work / "wl" / "WLMD" / "lockfile").touch()
    (work / "subscribers").write_text("".join(f"{ae} 127.0.0.1 {p}\n" for ae, p in table))
    notify_path = work / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "PYTHONPATH": str(REPO_ROOT)}
    argv = [sys.executable, "-m", "wlmd", "--listen-address", "127.0.0.1", "-v"]
    argv += ["--ups-ae-title", "UPS", "--state-store", str(work / "state.db")]
    argv += ["--ups-subscribers", str(work / "subscribers"), "-dfp", str(work / "wl"), str(port)]
    log = open(work / "wlmd.log", "wb")  # noqa: SIM115 - closed at the end
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    created: list[tuple[float, float]] = []
    claimed: list[tuple[float, float]] = []
    try:
        wait_ready(notify, proc)
        ae = AE(ae_title="BENCH")
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
        for uid in (PUSH, PULL, WATCH):
            ae.add_requested_context(uid)
        assoc = ae.associate("127.0.0.1", port, ae_title="UPS")
        if not assoc.is_established:
            raise SystemExit("no association to wlmd")
        for subscriber, _ in table:
            ds = Dataset()
            ds.ReceivingAE = subscriber
            ds.DeletionLock = "FALSE"
            assert assoc.send_n_action(ds, 3, WATCH, GLOBAL)[0].Status == 0
        for n in range(args.rounds):
            uid = f"1.2.826.0.1.3680043.10.99.{n + 1}"
            sent = time.monotonic()
            assert assoc.send_n_create(step(), PUSH, uid)[0].Status == 0
            times = arrivals.wait((uid, "SCHEDULED"), args.subscribers)
            created.append((min(times) - sent, max(times) - sent))
            change = Dataset()
            change.TransactionUID = f"1.2.826.0.1.3680043.10.98.{n + 1}"
            change.ProcedureStepState = "IN PROGRESS"
            sent = time.monotonic()
            assert assoc.send_n_action(change, 1, PULL, uid)[0].Status == 0
            times = arrivals.wait((uid, "IN PROGRESS"), args.subscribers)
            claimed.append((min(times) - sent, max(times) - sent))
        assoc.release()
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
        for server in servers:
            server.shutdown()
        notify.close()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    def row(name: str, samples: list[tuple[float, float]]) -> dict[str, float]:
        last = [b * 1000 for _, b in samples]
        first = [a * 1000 for a, _ in samples]
        result = {
            "first_median_ms": statistics.median(first),
            "all_median_ms": statistics.median(last),
            "all_max_ms": max(last),
        }
        print(
            f"{name:<28} first report {result['first_median_ms']:7.1f} ms (median)   all"
            f" {args.subscribers}: median {result['all_median_ms']:7.1f} ms,"
            f" max {result['all_max_ms']:7.1f} ms"
        )
        return result

    print(f"{args.subscribers} subscribers, {args.rounds} rounds, {os.cpu_count()} CPUs")
    results = {"create": row("N-CREATE (State Report)", created)}
    results["claim"] = row("N-ACTION claim (State Report)", claimed)
    worst = max(results["claim"]["all_max_ms"], results["create"]["all_max_ms"])
    print(f"target: all {args.subscribers} delivered ≤ 1000 ms: max {worst:.0f} ms", end=" ")
    print("met" if worst <= 1000 else "NOT met")
    if args.json:
        args.json.write_text(json.dumps({"subscribers": args.subscribers, **results}, indent=2))


if __name__ == "__main__":
    main()
