"""Association cost: wlmd (fork), wlmd (--single-process) and DCMTK's wlmscpfs side by side.

For each server, N sequential associations as echoscu makes them: connect,
A-ASSOCIATE-RQ (Verification, implicit VR little endian), C-ECHO-RQ, A-RELEASE-RQ,
close. The client speaks the upper layer protocol itself (a few hundred bytes,
prepared once), so what is measured is the server, not a client library or a
process start. Reported per server:

* set-up: connect until the A-ASSOCIATE-AC has arrived (median, p95), in ms;
* cycle: connect until the A-RELEASE-RP has arrived (median, p95), in ms;
* associations per second: N divided by the wall time of the N cycles;

and the ratios wlmd/wlmscpfs (for times, < 1 means wlmd is faster; for rates, > 1).

``--client echoscu`` runs DCMTK's echoscu once per association instead (then the
numbers include starting echoscu).

wlmscpfs binds every interface, so it runs in its own network namespace
(``unshare --net``; see tests/helpers/servers.py) and the client joins that
namespace: a thread that has called setns(2), or ``nsenter`` for echoscu. wlmd
listens on 127.0.0.1. Needs root for the namespace; without it wlmscpfs is
skipped unless ``--allow-all-interfaces`` is given.

    python bench/assoc.py [-n 200] [--json out.json] [--client raw|echoscu]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.helpers import servers  # noqa: E402
from tests.helpers.dcmtk import dcmtk_tool  # noqa: E402
from tests.helpers.worklists import complete_entry, make_area  # noqa: E402

AREA = "WLMD"
CALLING = "BENCH"
#: Per-socket-operation timeout, and the bound on one server's whole run.
IO_TIMEOUT = 10.0
RUN_TIMEOUT = 300.0
WARM_UP = 5
CLONE_NEWNET = 0x40000000

VERIFICATION = b"1.2.840.10008.1.1"
IMPLICIT_LE = b"1.2.840.10008.1.2"
APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPLEMENTATION_UID = b"1.2.826.0.1.3680043.9.7433.99.1"


# --------------------------------------------------------------------------- PDUs


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(body)) + body


def _ae(title: str) -> bytes:
    return title.encode("ascii").ljust(16)


def associate_rq(called: str, calling: str) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2): Verification with implicit VR little endian."""
    context = _item(
        0x20,
        bytes([1, 0, 0, 0]) + _item(0x30, VERIFICATION) + _item(0x40, IMPLICIT_LE),
    )
    user = _item(
        0x50,
        _item(0x51, struct.pack(">L", 16384)) + _item(0x52, IMPLEMENTATION_UID),
    )
    body = (
        struct.pack(">HH", 1, 0)
        + _ae(called)
        + _ae(calling)
        + bytes(32)
        + _item(0x10, APPLICATION_CONTEXT)
        + context
        + user
    )
    return _pdu(0x01, body)


def _element(group: int, elem: int, value: bytes) -> bytes:
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHL", group, elem, len(value)) + value


def echo_rq(message_id: int = 1) -> bytes:
    """P-DATA-TF with one C-ECHO-RQ command (implicit VR little endian, PS3.7 9.3.5)."""
    elements = (
        _element(0, 0x0002, VERIFICATION)
        + _element(0, 0x0100, struct.pack("<H", 0x0030))
        + _element(0, 0x0110, struct.pack("<H", message_id))
        + _element(0, 0x0800, struct.pack("<H", 0x0101))
    )
    command = _element(0, 0x0000, struct.pack("<L", len(elements))) + elements
    pdv = struct.pack(">L", len(command) + 2) + bytes([1, 0x03]) + command
    return _pdu(0x04, pdv)


RELEASE_RQ = _pdu(0x05, bytes(4))


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def recv_pdu(sock: socket.socket) -> tuple[int, bytes]:
    kind, _, length = struct.unpack(">BBL", _recv_exactly(sock, 6))
    return kind, _recv_exactly(sock, length)


def echo_status(pdata: bytes) -> int:
    """The Status (0000,0900) of a C-ECHO-RSP in one P-DATA-TF body."""
    pos = 6  # PDV length (4), context id, message control header
    while pos + 8 <= len(pdata):
        group, elem, length = struct.unpack_from("<HHL", pdata, pos)
        if (group, elem) == (0, 0x0900):
            return int(struct.unpack_from("<H", pdata, pos + 8)[0])
        pos += 8 + length
    raise ValueError("no Status in the C-ECHO-RSP")


# --------------------------------------------------------------------------- clients


@dataclass
class Sample:
    setup: float
    cycle: float


def raw_echo(port: int, rq: bytes, echo: bytes) -> Sample:
    """One echoscu-like association over our own socket; times in seconds."""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(rq)
        kind, _ = recv_pdu(sock)
        if kind != 0x02:
            raise RuntimeError(f"association not accepted (PDU type 0x{kind:02X})")
        setup = time.perf_counter() - started
        sock.sendall(echo)
        kind, body = recv_pdu(sock)
        if kind != 0x04 or echo_status(body) != 0:
            raise RuntimeError("C-ECHO failed")
        sock.sendall(RELEASE_RQ)
        kind, _ = recv_pdu(sock)
        if kind != 0x06:
            raise RuntimeError(f"no A-RELEASE-RP (PDU type 0x{kind:02X})")
        cycle = time.perf_counter() - started
    return Sample(setup, cycle)


def echoscu_echo(port: int, wrapper: list[str], echoscu: str) -> Sample:
    """One DCMTK echoscu run; set-up is not separable, so it is the whole run."""
    argv = [*wrapper, echoscu, "-aet", CALLING, "-aec", AREA, "-to", "10", "-ta", "10"]
    started = time.perf_counter()
    subprocess.run(
        [*argv, "127.0.0.1", str(port)],
        check=True,
        timeout=IO_TIMEOUT * 3,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    elapsed = time.perf_counter() - started
    return Sample(elapsed, elapsed)


def in_netns(pid: int | None, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a thread inside the network namespace of ``pid`` (or here)."""
    if pid is None:
        return work()
    outcome: dict[str, Any] = {}

    def target() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        try:
            if libc.setns(fd, CLONE_NEWNET) != 0:
                outcome["error"] = OSError(ctypes.get_errno(), "setns failed")
                return
        finally:
            os.close(fd)
        try:
            outcome["result"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="netns-client", daemon=True)
    thread.start()
    thread.join(timeout=RUN_TIMEOUT)
    if thread.is_alive():
        raise TimeoutError(f"run did not finish within {RUN_TIMEOUT}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


# --------------------------------------------------------------------------- runs


@dataclass
class Result:
    server: str
    n: int
    setup_median_ms: float
    setup_p95_ms: float
    cycle_median_ms: float
    cycle_p95_ms: float
    assoc_per_s: float


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def measure(name: str, server: servers.Server, n: int, client: str) -> Result:
    if client == "raw":
        rq, echo = associate_rq(AREA, CALLING), echo_rq()

        def once() -> Sample:
            return raw_echo(server.port, rq, echo)

        netns = server.netns_pid
    else:
        tool = dcmtk_tool("echoscu")
        if tool is None:
            raise SystemExit("DCMTK echoscu not found (set DCMTK_BIN_DIR)")
        wrapper = server.client_wrapper

        def once() -> Sample:
            return echoscu_echo(server.port, wrapper, tool)

        netns = None  # nsenter does it

    def run() -> tuple[list[Sample], float]:
        deadline = time.monotonic() + RUN_TIMEOUT
        for _ in range(WARM_UP):
            once()
        samples = []
        started = time.perf_counter()
        for _ in range(n):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: not done within {RUN_TIMEOUT}s")
            samples.append(once())
        return samples, time.perf_counter() - started

    samples, wall = in_netns(netns, run)
    setup = [s.setup * 1000 for s in samples]
    cycle = [s.cycle * 1000 for s in samples]
    return Result(
        server=name,
        n=n,
        setup_median_ms=round(statistics.median(setup), 3),
        setup_p95_ms=round(p95(setup), 3),
        cycle_median_ms=round(statistics.median(cycle), 3),
        cycle_p95_ms=round(p95(cycle), 3),
        assoc_per_s=round(n / wall, 1),
    )


@contextlib.contextmanager
def started(kind: str, data: Path, logs: Path, allow_all: bool) -> Iterator[servers.Server]:
    if kind == "wlmd-fork":
        with servers.wlmd(data, ["--fork"], log_dir=logs) as server:
            yield server
    elif kind == "wlmd-single":
        with servers.wlmd(data, ["--single-process"], log_dir=logs) as server:
            yield server
    else:
        if not servers.netns_available() and not allow_all:
            raise SystemExit(
                "no network namespaces here (needs root): wlmscpfs would bind every "
                "interface; rerun with --allow-all-interfaces to accept that"
            )
        with servers.wlmscpfs(data, log_dir=logs) as server:
            yield server


def table(results: list[Result]) -> str:
    head = (
        "server",
        "n",
        "setup med ms",
        "setup p95 ms",
        "cycle med ms",
        "cycle p95 ms",
        "assoc/s",
    )
    rows = [
        (
            r.server,
            str(r.n),
            f"{r.setup_median_ms:.2f}",
            f"{r.setup_p95_ms:.2f}",
            f"{r.cycle_median_ms:.2f}",
            f"{r.cycle_p95_ms:.2f}",
            f"{r.assoc_per_s:.1f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    lines = [
        "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True))
        for row in [head, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def ratios(results: list[Result]) -> dict[str, dict[str, float]]:
    """wlmd/wlmscpfs for every measure (times: < 1 is faster; assoc/s: > 1 is faster)."""
    by_name = {r.server: r for r in results}
    base = by_name.get("wlmscpfs")
    if base is None:
        return {}
    out = {}
    for r in results:
        if r.server == "wlmscpfs":
            continue
        out[f"{r.server}/wlmscpfs"] = {
            key: round(getattr(r, key) / getattr(base, key), 2)
            for key in (
                "setup_median_ms",
                "setup_p95_ms",
                "cycle_median_ms",
                "cycle_p95_ms",
                "assoc_per_s",
            )
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=200, help="associations per server (1..10000)")
    parser.add_argument("--client", choices=("raw", "echoscu"), default="raw")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--servers",
        default="wlmd-fork,wlmd-single,wlmscpfs",
        help="comma-separated subset of wlmd-fork, wlmd-single, wlmscpfs",
    )
    parser.add_argument("--allow-all-interfaces", action="store_true")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 10_000:
        parser.error("-n must be in 1..10000")

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="wlmd-bench-") as tmp:
        data, logs = Path(tmp) / "data", Path(tmp) / "logs"
        make_area(data, AREA, [complete_entry(PatientID=f"B{n}") for n in range(1, 6)])
        for kind in args.servers.split(","):
            with started(kind, data, logs, args.allow_all_interfaces) as server:
                results.append(measure(kind, server, args.n, args.client))
            print(f"{kind}: done", file=sys.stderr)

    report = {
        "benchmark": "association set-up and C-ECHO associations per second",
        "client": args.client,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "results": [asdict(r) for r in results],
        "ratios": ratios(results),
    }
    print(table(results))
    for name, values in report["ratios"].items():
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" for k, v in values.items()))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
