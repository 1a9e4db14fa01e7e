"""The API's view of the storage areas: every read and write is :mod:`wlmd.authoring`'s.

This module adds only what HTTP needs on top of the authoring API
(:class:`wlmd.authoring.editor.AreaEditor`):

- **Entry ids without patient data.** URLs name an entry by an id, never by
  its file name: files written by authoring are named by a hash of the order
  identity (``order-<hex>.wl``) and their id is that stem; any other file (a
  RIS may call it ``SMITH_JOHN.wl``) gets ``file-<hex>``, a hash of its name,
  resolved by listing the area.
- **One caller at a time.** The write and read locks are POSIX record locks,
  which belong to the *process*: two threads of the API process would not
  exclude each other, and closing either's descriptor drops both locks
  (:mod:`wlmd.authoring.locking`). The server runs handlers in a thread pool,
  so every call into authoring holds :data:`_SERIAL`; writers in other
  processes (wlmctl, the RIS) are still excluded by the lockfile.
- **Summaries** for the list and the page: the keys ``wlmctl list`` shows,
  decoded as the server decodes them for matching.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from wlmd.authoring.editor import AreaEditor, Written
from wlmd.authoring.errors import AreaProblem, NotFound
from wlmd.authoring.selection import Selection
from wlmd.worklist import keys
from wlmd.worklist.entry import WorklistEntry
from wlmd.worklist.layout import WORKLIST_SUFFIX, storage_area_names

_SERIAL = threading.Lock()
_ORDER_ID = re.compile(r"order-[0-9a-f]{32}")
_FILE_ID = re.compile(r"file-[0-9a-f]{32}")

#: Summary fields: (JSON name, tag, in the first SPS item).
SUMMARY = (
    ("PatientName", keys.tag("PatientName"), False),
    ("PatientID", keys.PATIENT_ID, False),
    ("AccessionNumber", keys.tag("AccessionNumber"), False),
    ("Modality", keys.MODALITY, True),
    ("ScheduledStationAETitle", keys.SCHEDULED_STATION_AE_TITLE, True),
    ("ScheduledProcedureStepStartDate", keys.SPS_START_DATE, True),
    ("ScheduledProcedureStepStartTime", keys.tag("ScheduledProcedureStepStartTime"), True),
)


def entry_id(name: str) -> str:
    """The URL id of the file ``name`` (no patient data, stable while the name is)."""
    stem = name[: -len(WORKLIST_SUFFIX)]
    if _ORDER_ID.fullmatch(stem):
        return stem
    return "file-" + hashlib.sha256(name.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def summary(entry: WorklistEntry) -> dict[str, str]:
    root = entry.root_text
    steps = entry.sps_text or []
    step = steps[0] if steps else None
    out: dict[str, str] = {}
    for field, tag, in_sps in SUMMARY:
        view = step if in_sps else root
        value = view.get(tag) if view is not None else None
        out[field] = (value or "").strip()
    return out


@dataclass(frozen=True)
class Listing:
    """Served entries matching a selection (one page of them) and the files the server skips."""

    total: int
    entries: list[dict[str, Any]]
    skipped: list[dict[str, str]]


class Areas:
    """The storage areas under ``--data-files-path``, one editor each, used one call at a time."""

    def __init__(self, data_files_path: str, lock_timeout: float | None) -> None:
        self.root = data_files_path
        self.lock_timeout = lock_timeout
        self._editors: dict[str, AreaEditor] = {}

    def names(self) -> list[str]:
        """The storage areas: directories with a lockfile whose name can be a called AE title."""
        try:
            return storage_area_names(self.root)
        except OSError as exc:
            raise AreaProblem(f"cannot read the data files path: {exc.strerror}") from exc

    @contextmanager
    def editor(self, area: str) -> Iterator[AreaEditor]:
        with _SERIAL:
            if area not in self.names():
                raise NotFound(f"no storage area {area}")
            editor = self._editors.get(area)
            if editor is None:
                editor = AreaEditor(self.root, area, self.lock_timeout)
                self._editors[area] = editor
            yield editor

    def list(self, area: str, selection: Selection, offset: int, limit: int | None) -> Listing:
        with self.editor(area) as editor:
            listed = editor.entries()
        served = [
            item
            for item in listed
            if item.entry is not None and selection.matches(item.entry)
        ]  # fmt: skip
        served.sort(key=_schedule_order)
        page = served[offset : None if limit is None else offset + limit]
        return Listing(
            total=len(served),
            entries=[
                {"id": entry_id(i.name), **summary(i.entry)} for i in page if i.entry is not None
            ],
            skipped=[
                {"id": entry_id(i.name), "reason": i.problem or "not served"}
                for i in listed
                if i.entry is None
            ],
        )

    def get(self, area: str, id_: str) -> Dataset:
        """The entry's data set as stored (DICOM JSON leaves its file meta out)."""
        with self.editor(area) as editor:
            return editor.get(self._name(editor, id_))

    def put(self, area: str, ds: Dataset) -> tuple[str, Written]:
        with self.editor(area) as editor:
            written = editor.put(ds)
        return entry_id(written.name), written

    def remove(self, area: str, id_: str) -> None:
        with self.editor(area) as editor:
            editor.remove([self._name(editor, id_)])

    def _name(self, editor: AreaEditor, id_: str) -> str:
        """The file name of ``id_`` in the editor's area; NotFound for an unknown id."""
        if _ORDER_ID.fullmatch(id_):
            return id_ + WORKLIST_SUFFIX
        if _FILE_ID.fullmatch(id_):
            try:
                names = os.listdir(editor.path)
            except OSError as exc:
                raise AreaProblem(f"cannot read storage area: {exc.strerror}") from exc
            for name in names:
                if name.endswith(WORKLIST_SUFFIX) and entry_id(name) == id_:
                    return name
        raise NotFound(f"no entry {id_}")


def _schedule_order(item: Any) -> tuple[str, str, str]:
    fields = summary(item.entry)
    return (
        fields["ScheduledProcedureStepStartDate"],
        fields["ScheduledProcedureStepStartTime"],
        item.name,
    )
