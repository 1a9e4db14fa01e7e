"""The benchmark's raw DICOM upper-layer client (bench/mwlclient.py), for tests.

A client that speaks the protocol itself, with every socket operation bounded,
costs about a millisecond per association, where DCMTK's programs cost a
process start and pynetdicom a few threads: the load tests need thousands.
It is loaded from bench/ by path so there is one copy of it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "bench" / "mwlclient.py"
_spec = importlib.util.spec_from_file_location("wlmd_bench_mwlclient", _PATH)
assert _spec is not None and _spec.loader is not None
mwlclient = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mwlclient
_spec.loader.exec_module(mwlclient)

Association = mwlclient.Association
DicomError = mwlclient.DicomError
Rejected = mwlclient.Rejected
associate_rq = mwlclient.associate_rq
identifier = mwlclient.identifier
