"""Request files (``-rfp``/``-rff``): each C-FIND identifier as received, in dcmdump style.

File names come from the ``--request-file-format`` pattern with wlmscpfs's
placeholders ``#a`` (calling AE), ``#c`` (called AE), ``#i`` (process id),
``#p`` (PatientID of the request) and ``#t`` (YYYYMMDDhhmmssffffff). Unlike
wlmscpfs, the substituted values are sanitised: a request can never choose a
path outside the directory. A failure to write is logged; the query is still
answered, and a file left incomplete (a full disk) is removed.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import re

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

LOG = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def sanitize(value: str) -> str:
    """Letters, digits, '_' and '-' only: no '/', no '.', no control characters."""
    return _UNSAFE.sub("_", value.strip())


def request_file_name(
    pattern: str,
    *,
    calling_ae: str,
    called_ae: str,
    patient_id: str,
    pid: int | None = None,
    now: _dt.datetime | None = None,
) -> str:
    """The file name for one request (placeholders replaced, values sanitised)."""
    now = now or _dt.datetime.now()
    replacements = {
        "#a": sanitize(calling_ae),
        "#c": sanitize(called_ae),
        "#i": str(os.getpid() if pid is None else pid),
        "#t": now.strftime("%Y%m%d%H%M%S%f"),
        "#p": sanitize(patient_id),
    }
    name = re.sub("#[acitp]", lambda m: replacements[m.group(0)], pattern)
    if name in ("", ".", ".."):
        name = "request_" + replacements["#t"]
    return name


def write_request_file(
    directory: str, pattern: str, identifier: Dataset, calling_ae: str, called_ae: str
) -> str | None:
    """Write the identifier; returns the path, or None after logging an error."""
    patient_id = ""
    try:
        patient_id = str(identifier.get("PatientID", "") or "")
    except Exception:  # an undecodable PatientID still gets its request logged
        patient_id = ""
    name = request_file_name(
        pattern, calling_ae=calling_ae, called_ae=called_ae, patient_id=patient_id
    )
    path = os.path.join(directory, name)
    try:
        text = dump(identifier)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o640)
    except Exception as exc:
        LOG.error("could not write request file %s: %s", path, exc)
        return None
    ours: os.stat_result | None = None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
            ours = os.fstat(fd)
            out.write(text)
    except Exception as exc:
        # e.g. a full disk: an empty or truncated file would pass for a (shorter) request
        removed = " (incomplete file removed)" if _remove_if_same(path, ours) else ""
        LOG.error("could not write request file %s: %s%s", path, exc, removed)
        return None
    return path


def _remove_if_same(path: str, ours: os.stat_result | None) -> bool:
    """Unlink ``path`` if it is still the file we created (not one put there since)."""
    with contextlib.suppress(OSError):
        now = os.lstat(path)
        if ours is not None and (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
            os.unlink(path)
            return True
    return False


def dump(ds: Dataset, indent: int = 0) -> str:
    """A dcmdump-like text rendering of a data set."""
    lines: list[str] = []
    if indent == 0:
        lines += ["", "# Dicom-Data-Set"]
    for elem in ds:
        lines.extend(_dump_element(elem, indent))
    return "\n".join(lines) + ("\n" if indent == 0 else "")


def _dump_element(elem: DataElement, indent: int) -> list[str]:
    pad = "  " * indent
    tag = f"({elem.tag.group:04x},{elem.tag.element:04x})"
    name = elem.keyword or "Unknown Tag & Data"
    if elem.VR == "SQ":
        items = list(elem.value or [])
        out = [f"{pad}{tag} SQ (Sequence with explicit length #={len(items)})   # {name}"]
        for item in items:
            out.append(f"{pad}  (fffe,e000) na (Item with explicit length #={len(item)})")
            out.append(dump(item, indent + 2))
            out.append(f"{pad}  (fffe,e00d) na (ItemDelimitationItem for re-encoding)")
        out.append(f"{pad}(fffe,e0dd) na (SequenceDelimitationItem for re-encod.)")
        return out
    value = elem.value
    if value is None or value == "" or (isinstance(value, (list, tuple)) and not value):
        shown = "(no value available)"
        vm = 0
    else:
        if isinstance(value, (list, tuple)):
            text = "\\".join(str(v) for v in value)
        elif isinstance(value, bytes):
            text = value.hex(" ")
        else:
            text = str(value)
        shown = f"[{text}]"
        vm = elem.VM
    return [f"{pad}{tag} {elem.VR} {shown:<40} # {vm}, {name}"]
