"""What wlmctl prints: the ``list`` table and its JSON, ``show``'s listing.

Patient data goes to stdout only, because the user asked for it; stderr
carries progress and errors, which name files and attributes, never values.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO

from pydicom.dataset import Dataset

from wlmd.authoring.editor import Listed
from wlmd.worklist import keys
from wlmd.worklist.entry import WorklistEntry

ACCESSION_NUMBER = keys.tag("AccessionNumber")

#: (heading, JSON key) of the list's columns, in order.
COLUMNS = (
    ("FILE", "file"),
    ("PATIENT ID", "patient_id"),
    ("PATIENT NAME", "patient_name"),
    ("ACCESSION", "accession"),
    ("MODALITY", "modality"),
    ("STATION", "station"),
    ("DATE", "date"),
    ("TIME", "time"),
)


def row(listed: Listed) -> dict[str, Any]:
    """One list row: the file, the columns' values (decoded), or the skip reason."""
    values: dict[str, Any] = {"file": listed.name}
    if listed.entry is None:
        values["problem"] = listed.problem
        return values
    values.update(_columns(listed.entry))
    return values


def _columns(entry: WorklistEntry) -> dict[str, str]:
    root = entry.root_text
    steps = entry.sps_text or []
    step = steps[0] if steps else {}
    return {
        "patient_id": root.get(keys.PATIENT_ID) or "",
        "patient_name": root.get(keys.PATIENT_NAME) or "",
        "accession": root.get(ACCESSION_NUMBER) or "",
        "modality": step.get(keys.MODALITY) or "",
        "station": step.get(keys.SCHEDULED_STATION_AE_TITLE) or "",
        "date": step.get(keys.SPS_START_DATE) or "",
        "time": step.get(keys.SPS_START_TIME) or "",
    }


def print_table(rows: Sequence[dict[str, Any]], out: TextIO) -> None:
    """Columns padded to their widest value; a skipped file shows its reason instead."""
    served = [r for r in rows if "problem" not in r]
    widths = [
        max([len(heading)] + [_width(str(r.get(key, ""))) for r in served])
        for heading, key in COLUMNS
    ]
    widths[0] = max([widths[0]] + [len(r["file"]) for r in rows])
    out.write("  ".join(_pad(h, w) for (h, _), w in zip(COLUMNS, widths, strict=True)).rstrip())
    out.write("\n")
    for r in rows:
        if "problem" in r:
            out.write(f"{_pad(r['file'], widths[0])}  (skipped by the server: {r['problem']})\n")
            continue
        cells = [_pad(str(r.get(key, "")), w) for (_, key), w in zip(COLUMNS, widths, strict=True)]
        out.write("  ".join(cells).rstrip() + "\n")


def _width(text: str) -> int:
    """Terminal columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def print_json(document: Any, out: TextIO) -> None:
    json.dump(document, out, ensure_ascii=False, indent=2)
    out.write("\n")


def print_dataset(ds: Dataset, out: TextIO, indent: int = 0) -> None:
    """A dcmdump-like listing: ``(gggg,eeee) VR Keyword [value]``, items indented."""
    pad = "  " * indent
    for element in ds:
        tag_ = f"({element.tag.group:04X},{element.tag.element:04X})"
        name = element.keyword or "(private)"
        if element.VR == "SQ":
            items = element.value or []
            out.write(f"{pad}{tag_} SQ {name} ({len(items)} item{'s' * (len(items) != 1)})\n")
            for number, item in enumerate(items, start=1):
                out.write(f"{pad}  item {number}\n")
                print_dataset(item, out, indent + 2)
            continue
        value = element.value
        if isinstance(value, bytes):
            text = value.hex(" ") if len(value) <= 32 else f"{len(value)} bytes"
        elif element.VM > 1:
            text = "\\".join(str(v) for v in value)
        else:
            text = "" if value is None else str(value)
        out.write(f"{pad}{tag_} {element.VR} {name} [{text}]\n")
