"""The benchmark's raw DICOM upper-layer client (bench/mwlclient.py), for tests.

A client that speaks the protocol itself, with every socket operation bounded,
costs about a millisecond per association, where DCMTK's programs cost a
process start and pynetdicom a few threads: the load tests need thousands.
It is loaded from bench/ by path so there is one copy of it.
"""

from __future__ import annotations

import importlib.util
import socket
import struct
import sys
from pathlib import Path
from types import ModuleType

_BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_module(stem: str) -> ModuleType:
    """``bench/<stem>.py``, loaded by path (bench/ is not a package): one copy of each."""
    name = f"wlmd_bench_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, _BENCH / f"{stem}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


mwlclient = bench_module("mwlclient")

Association = mwlclient.Association
DicomError = mwlclient.DicomError
Rejected = mwlclient.Rejected
associate_rq = mwlclient.associate_rq
identifier = mwlclient.identifier


def associated_socket(port: int, called: str, calling: str, timeout: float = 10.0) -> socket.socket:
    """A plain socket with an accepted association on 127.0.0.1:port, for sending raw PDUs."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(associate_rq(called, calling, 16384))
    head = sock.recv(6)
    assert head[:1] == b"\x02", f"no A-ASSOCIATE-AC: {head!r}"
    left = struct.unpack(">L", head[2:6])[0]
    while left > 0:
        left -= len(sock.recv(left))
    return sock
