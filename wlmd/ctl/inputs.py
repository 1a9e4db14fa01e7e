"""Reading wlmctl's input files: DICOM JSON, dump text or DICOM, told apart by content.

``-`` is standard input. ``--format`` overrides the guess, which is: a
``{`` or ``[`` first is JSON; ``DICM`` at offset 128, or a binary element
header of group 0002/0008/0010 at the start (DCMTK's rule for files
without a preamble), is DICOM; anything else is dump text.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

from pydicom.dataset import Dataset

from wlmd.authoring import sources
from wlmd.authoring.errors import BadInput

FORMATS = ("auto", "json", "dump", "dicom")
#: Larger inputs are refused before parsing (no worklist entry is this big).
MAX_INPUT = 64 * 1024 * 1024


def read_bytes(path: str) -> bytes:
    try:
        if path == "-":
            data = sys.stdin.buffer.read(MAX_INPUT + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(MAX_INPUT + 1)
    except OSError as exc:
        raise BadInput(f"cannot read: {exc.strerror}") from exc
    if len(data) > MAX_INPUT:
        raise BadInput(f"larger than {MAX_INPUT // (1024 * 1024)} MiB")
    return data


def guess_format(data: bytes) -> str:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"{", b"["):
        return "json"
    if data[128:132] == b"DICM":
        return "dicom"
    if len(data) >= 8 and int.from_bytes(data[:2], "little") in (0x0002, 0x0008, 0x0010):
        return "dicom"
    return "dump"


def datasets(path: str, fmt: str = "auto") -> list[Dataset]:
    """The data sets in one input file (a JSON array gives several)."""
    data = read_bytes(path)
    if fmt == "auto":
        fmt = guess_format(data)
    if fmt == "json":
        return sources.from_json(data)
    if fmt == "dicom":
        return [sources.from_dicom(data)]
    return [sources.from_dump(data)]


def directory_files(directory: str) -> list[str]:
    """The input files of ``import DIR``: regular files, no hidden ones, no lockfile."""
    try:
        with os.scandir(directory) as it:
            names = sorted(
                e.name
                for e in it
                if e.is_file() and not e.name.startswith(".") and e.name != "lockfile"
            )
    except OSError as exc:
        raise BadInput(f"cannot read directory {directory}: {exc.strerror}") from exc
    return [os.path.join(directory, name) for name in names]


def labelled(paths: list[str], fmt: str, labels: list[str]) -> Iterator[Dataset | BadInput]:
    """Every data set of ``paths`` in order (an unreadable file as its error); ``labels``
    gets one entry per item yielded, naming its file (and item of a JSON array)."""
    for path in paths:
        try:
            found = datasets(path, fmt)
        except BadInput as exc:
            labels.append(path)
            yield exc
            continue
        for number, ds in enumerate(found, start=1):
            labels.append(path if len(found) == 1 else f"{path}[{number}]")
            yield ds
