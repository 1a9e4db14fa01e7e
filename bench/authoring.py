"""``wlmctl import`` of N entries (issue 14's target: 10,000 in at most 30 s).

Writes N DICOM JSON files (one order each, without StudyInstanceUID, so
wlmctl generates it and checks it against the area; names 60 % ASCII, 25 %
Latin-1, 15 % outside Latin-1, so all three character set choices are
made), then times ``python -m wlmd.ctl -dfp ROOT import DIR`` into an empty
storage area from the process's start to its exit: reading, checking by the
server's judge, the lock protocol with an fsync per file. Then it checks
the result: N ``.wl`` files, and ``wlmctl validate`` of the whole area
clean (timed too).

    python bench/authoring.py --entries 10000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 30.0
NAMES = [("DOE", "JOHN")] * 12 + [("MÜLLER", "JÖRG")] * 5 + [("ŁUKASZ", "BŁASZCZYK")] * 3
MODALITIES = ("CT", "MR", "US", "CR", "DX", "MG", "NM", "XA")


def order(n: int) -> dict[str, object]:
    family, given = NAMES[n % len(NAMES)]

    def text(vr: str, value: str) -> dict[str, object]:
        return {"vr": vr, "Value": [value]}

    step = {
        "00400001": text("AE", f"STATION{n % 32:02d}"),
        "00400002": text("DA", f"202612{1 + n % 28:02d}"),
        "00400003": text("TM", f"{8 + n % 10:02d}{n % 60:02d}"),
        "00080060": text("CS", MODALITIES[n % len(MODALITIES)]),
        "00400007": text("LO", "PLANNED STEP"),
        "00400009": text("SH", f"S{n:07d}"),
    }
    return {
        "00080050": text("SH", f"ACC{n:08d}"),
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": f"{family}{n}^{given}"}]},
        "00100020": text("LO", f"PID{n:08d}"),
        "00100030": text("DA", "19700101"),
        "00321060": text("LO", "REQUESTED PROCEDURE"),
        "00401001": text("SH", f"RP{n:07d}"),
        "00400100": {"vr": "SQ", "Value": [step]},
    }


def run(argv: list[str], timeout: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    return time.monotonic() - started, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, help="default: a temporary directory")
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wlmd-bench-authoring-", dir=args.workdir) as tmp:
        inputs = Path(tmp) / "orders"
        inputs.mkdir()
        for n in range(args.entries):
            (inputs / f"{n:07d}.json").write_text(json.dumps(order(n), ensure_ascii=False))
        area = Path(tmp) / "data" / "WLMD"
        area.mkdir(parents=True)
        (area / "lockfile").touch()
        ctl = [sys.executable, "-m", "wlmd.ctl", "-dfp", str(area.parent)]
        seconds, done = run([*ctl, "import", "-q", str(inputs)], args.timeout)
        if done.returncode != 0:
            sys.stderr.write(done.stderr[-4000:])
            return 1
        files = sum(1 for name in os.listdir(area) if name.endswith(".wl"))
        check_seconds, checked = run([*ctl, "validate", "-q"], args.timeout)
        print(f"wlmctl import of {args.entries} JSON orders into an empty area")
        print(f"  import                {seconds:8.2f} s   {args.entries / seconds:8.0f} entries/s")
        print(f"  validate (whole area) {check_seconds:8.2f} s   exit status {checked.returncode}")
        print(f"  files written         {files:8d}")
        print(f"  wlmctl's summary      {done.stderr.strip().splitlines()[-1]}")
        ok = files == args.entries and checked.returncode == 0
        if args.entries >= 10_000:
            scaled = seconds * 10_000 / args.entries
            met = "met" if scaled <= TARGET_SECONDS else "NOT met"
            print(f"target 10,000 entries <= {TARGET_SECONDS:g} s: {scaled:.1f} s {met}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
