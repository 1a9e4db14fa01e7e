"""What the server would say about a file: served, or skipped and why.

There is one judge: :func:`wlmd.worklist.area.examine`, the function a query
runs on every ``.wl`` file (regular file, size, symbolic links, DICOM
parsing, PS3.4 Table K.6-1 completeness as wlmscpfs's
``--enable-file-reject``). Authoring calls it on the flushed temporary file
it is about to rename into place, and ``wlmctl validate`` on the files it
is given, so a file is refused by the writer exactly when the server would
skip it, with the same words.
"""

from __future__ import annotations

import os
import tempfile

from wlmd.authoring.errors import EntryRejected
from wlmd.worklist.area import examine
from wlmd.worklist.entry import WorklistEntry


def judge_file(
    path: str, name: str | None = None, area_path: str | None = None
) -> tuple[WorklistEntry | None, str | None]:
    """The server's verdict on ``path`` read as ``name`` in ``area_path`` (default: its own)."""
    name = name or os.path.basename(path)
    area_real = os.path.realpath(area_path or os.path.dirname(os.path.abspath(path)))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, "no such file"
    except OSError as exc:
        return None, exc.strerror or str(exc)
    return examine(path, name, st, area_real, file_reject=True)


def judge_bytes(data: bytes, name: str = "entry.wl") -> tuple[WorklistEntry | None, str | None]:
    """The server's verdict on ``data`` as the content of a ``.wl`` file."""
    with tempfile.TemporaryDirectory(prefix="wlmd-verdict-") as scratch:
        path = os.path.join(scratch, "entry")
        with open(path, "wb") as handle:
            handle.write(data)
        return judge_file(path, name, scratch)


def require_served(path: str, name: str, area_path: str) -> WorklistEntry:
    """The entry the server would serve from ``path``, or :class:`EntryRejected`."""
    entry, problem = judge_file(path, name, area_path)
    if entry is None:
        raise EntryRejected(problem or "not served")
    return entry
