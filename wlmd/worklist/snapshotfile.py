"""The snapshot cache file: parsed, indexed storage areas kept across restarts.

Parsing a worklist file with pydicom costs ~0.4 ms, 40 s at 100,000 files,
where wlmscpfs answers its first query after ~3 s. wlmd therefore writes
what it parsed (each file's signature and entry, each area's index) to one
file after loading, and at the next start reads it back (~0.3 s at 100,000),
then checks every file against it (stat: ~3 µs a file) and parses only new
and changed ones (:meth:`wlmd.worklist.area.StorageArea.restore`). The files
always win: the cache only saves parsing.

Layout: ``MAGIC``, a length-prefixed JSON header (what wrote it, for which
data files path and parse settings), the payload's length and CRC-32 and
the payload, a :mod:`marshal` dump of each area's state: its entry shapes
once, then per file the signature and the entry's packed blob with its
shape's number (:mod:`wlmd.worklist.packed`), so reading an entry back
makes one bytes object. marshal loads ~4× faster than pickle here and runs
no code; its format belongs to one Python version, which the header names.
A file that is missing, truncated, corrupt, written by another wlmd, Python
or parse configuration, or for another data files path is not used; the
reason is logged and everything is parsed as before.

The file is written atomically (temporary file, fsync, rename, fsync of the
directory) by a short-lived child of the supervisor, so no query waits for
it. It is only as private as its directory: it holds patient data, like the
worklist itself (mode 0600).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import marshal
import os
import struct
import sys
import zlib
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pydicom

import wlmd

MAGIC = b"WLMD-MWL-SNAPSHOT\n"
#: Bump when the shape of the payload changes (the code fingerprint catches the rest).
FORMAT = 2
_LENGTH = struct.Struct("<Q")
#: CRC-32 of the payload: it detects damage (the file is ours, in our directory; not a
#: signature), at ~20 ms for 100,000 entries where BLAKE2b took 120 ms.
_CHECK = struct.Struct("<I")
#: Source of the modules whose behaviour the cached entries and indexes depend on.
_FINGERPRINTED = (
    "wlmd.worklist.entry",
    "wlmd.worklist.packed",
    "wlmd.worklist.index",
    "wlmd.worklist.sortedblocks",
    "wlmd.worklist.area",
    "wlmd.worklist.values",
    "wlmd.worklist.charset",
    "wlmd.worklist.keys",
    "wlmd.worklist.layout",
    "wlmd.worklist.snapshotfile",
)

#: One area's state as :meth:`StorageArea.export` gives it (marshal-able values only).
AreaState = tuple[Any, ...]


class SnapshotUnusable(Exception):
    """The snapshot file cannot be used; ``str()`` says why, for the log."""


@dataclass(frozen=True)
class Identity:
    """What a snapshot must have been written for to be used: everything parsing depends on."""

    data_files_path: str
    file_reject: bool

    def header(self) -> dict[str, object]:
        return {
            "format": FORMAT,
            "wlmd": wlmd.__version__,
            "code": code_fingerprint(),
            "python": list(sys.version_info[:2]),
            "marshal": marshal.version,
            "pydicom": pydicom.__version__,
            "platform": f"{sys.byteorder}/{array('I').itemsize}",
            "data_files_path": os.path.realpath(self.data_files_path),
            "file_reject": self.file_reject,
        }


@functools.cache
def code_fingerprint() -> str:
    """A digest of the source of the modules the cached data depends on ("" if unreadable).

    Computed once, at start-up (:class:`WorklistStore` asks for it): after a
    package upgrade the files on disk are the new version's while the old
    process may still write a cache for its own code.
    """
    digest = hashlib.blake2b(digest_size=16)
    for name in _FINGERPRINTED:
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if path is None:
            __import__(name)
            path = getattr(sys.modules[name], "__file__", None)
        try:
            with open(str(path), "rb") as fp:
                digest.update(fp.read())
        except (OSError, TypeError):
            return ""
    return digest.hexdigest()


#: Header fields as the log names them when they differ.
_WHAT = {
    "format": "snapshot format",
    "wlmd": "wlmd version",
    "code": "wlmd code",
    "python": "Python version",
    "marshal": "marshal version",
    "pydicom": "pydicom version",
    "platform": "platform",
    "data_files_path": "data files path",
    "file_reject": "--enable-file-reject setting",
}


def read(path: str, identity: Identity) -> list[AreaState]:
    """The areas' states in ``path``; raises :class:`SnapshotUnusable` (FileNotFoundError
    when there is none yet)."""
    try:
        with open(path, "rb") as fp:
            data = fp.read()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SnapshotUnusable(f"cannot read it: {exc.strerror}") from exc
    if not data.startswith(MAGIC):
        raise SnapshotUnusable("not a wlmd snapshot file (or truncated at its start)")
    at = len(MAGIC)
    header_length, at = _length(data, at, "header")
    if len(data) < at + header_length:
        raise SnapshotUnusable("truncated in its header")
    try:
        header = json.loads(data[at : at + header_length].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SnapshotUnusable("corrupt header") from exc
    at += header_length
    expected = identity.header()
    if not isinstance(header, dict):
        raise SnapshotUnusable("corrupt header")
    for key, value in expected.items():
        if header.get(key) != value:
            raise SnapshotUnusable(
                f"written for another {_WHAT[key]} ({header.get(key)!r}, now {value!r})"
            )
    payload_length, at = _length(data, at, "payload")
    end = at + _CHECK.size + payload_length
    if len(data) < end:
        raise SnapshotUnusable(f"truncated ({len(data)} bytes, the header announces {end})")
    if len(data) != end:
        raise SnapshotUnusable("trailing bytes after the payload")
    (check,) = _CHECK.unpack_from(data, at)
    payload = memoryview(data)[at + _CHECK.size : end]
    if zlib.crc32(payload) != check:
        raise SnapshotUnusable("checksum mismatch (corrupt)")
    with collector_paused():
        try:
            areas = marshal.loads(payload)
        except (EOFError, ValueError, TypeError) as exc:
            raise SnapshotUnusable(f"corrupt payload ({exc})") from exc
    if not isinstance(areas, list) or not all(isinstance(a, tuple) for a in areas):
        raise SnapshotUnusable("corrupt payload (not a list of areas)")
    return areas


def _length(data: bytes, at: int, what: str) -> tuple[int, int]:
    if len(data) < at + _LENGTH.size:
        raise SnapshotUnusable(f"truncated in its {what} length")
    (value,) = _LENGTH.unpack_from(data, at)
    return value, at + _LENGTH.size


def write(path: str, identity: Identity, areas: list[AreaState]) -> int:
    """Write ``areas`` to ``path`` atomically; returns the file's size. Raises OSError."""
    header = json.dumps(identity.header(), sort_keys=True).encode("utf-8")
    payload = marshal.dumps(areas)
    check = _CHECK.pack(zlib.crc32(payload))
    directory = os.path.dirname(os.path.abspath(path))
    temporary = f"{path}.{os.getpid()}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fp:
            for part in (MAGIC, _LENGTH.pack(len(header)), header, _LENGTH.pack(len(payload))):
                fp.write(part)
            fp.write(check)
            fp.write(payload)
            fp.flush()
            os.fsync(fp.fileno())
        os.rename(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(dir_fd)  # the rename itself survives a crash
    finally:
        os.close(dir_fd)
    return len(MAGIC) + 2 * _LENGTH.size + len(header) + _CHECK.size + len(payload)


def remove_stale_temporaries(path: str) -> None:
    """Remove ``path.<pid>.tmp`` files a writer killed mid-way left behind."""
    directory, base = os.path.split(os.path.abspath(path))
    with contextlib.suppress(OSError), os.scandir(directory) as it:
        for entry in it:
            name = entry.name
            if name.startswith(base + ".") and name.endswith(".tmp"):
                pid = name[len(base) + 1 : -len(".tmp")]
                if pid.isdigit() and not _alive(int(pid)):
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic GC while millions of containers are created (it would scan them all
    repeatedly, doubling the load time); they hold no cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
