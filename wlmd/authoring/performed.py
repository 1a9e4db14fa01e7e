"""The worklist entries an MPPS acts on: found by identity, hidden, put back, removed.

The file side of :mod:`wlmd.mpps.policy`. Every change is made under the
area's write lock (:mod:`wlmd.authoring.locking`), so a query — wlmd's or
wlmscpfs's — sees the entry before or after, and is made durable (the
directory is fsynced) before the caller records it in the state store: a
crash in between leaves a file state the next pass recognises (a hidden
file is already hidden, a removed one already gone), which is what makes the
pass idempotent.

Hiding renames ``NAME.wl`` to ``NAME.wl.inprogress`` in the same directory:
wlmscpfs and wlmd read ``*.wl`` only, a rename is atomic, nothing is copied,
and putting it back is the reverse rename. The identities of the area's
files are cached by (inode, size, mtime), so a pass over a large area reads
only the files that changed since the last one.
"""

from __future__ import annotations

import datetime as _dt
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass

from wlmd.authoring import files
from wlmd.authoring.errors import AreaProblem
from wlmd.authoring.locking import DEFAULT_LOCK_TIMEOUT, write_locked
from wlmd.authoring.selection import sps_start_date
from wlmd.mpps.policy import HIDDEN_SUFFIX, Candidate
from wlmd.worklist import keys
from wlmd.worklist.entry import WorklistFileError, load_entry
from wlmd.worklist.layout import WORKLIST_SUFFIX

_ACCESSION = keys.tag("AccessionNumber")


@dataclass(frozen=True)
class _Known:
    signature: tuple[int, int, int]
    candidate: Candidate | None
    sps_date: str


class PerformedEntries:
    """One storage area's entries, as the MPPS entry policy changes them."""

    def __init__(self, area_path: str, lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT) -> None:
        self.path = area_path
        self.lock_timeout = lock_timeout
        self._known: dict[str, _Known] = {}

    def locked(self) -> AbstractContextManager[None]:
        """The area's write lock: hold it around :meth:`candidates` and the change."""
        return write_locked(self.path, self.lock_timeout)

    def candidates(self) -> list[Candidate]:
        """Every served and hidden entry that parses, with its identity (call under the lock)."""
        return [k.candidate for k in self._scan().values() if k.candidate is not None]

    def hide(self, base: str) -> bool:
        """``NAME.wl`` -> ``NAME.wl.inprogress``; False when it was hidden already (or is
        gone: the RIS removed it, there is nothing left to hide)."""
        if not os.path.exists(self._at(base)):
            return False
        self._rename(base, base + HIDDEN_SUFFIX)
        return True

    def restore(self, base: str) -> bool:
        """Put a hidden entry back; False when it is served already.

        When the RIS wrote the order again while it was hidden, its new file is
        kept and the hidden copy dropped: the RIS is the authority on the order.
        """
        hidden = base + HIDDEN_SUFFIX
        if not os.path.exists(self._at(hidden)):
            return False
        if os.path.exists(self._at(base)):
            files.remove(self.path, hidden, sync=True)
        else:
            self._rename(hidden, base)
        return True

    def remove(self, base: str) -> int:
        """Remove the entry, served or hidden; how many files were removed."""
        count = sum(
            files.remove(self.path, name, sync=False) for name in (base, base + HIDDEN_SUFFIX)
        )
        files.sync_directory_of(self.path)
        return count

    def purge_hidden(self, before: _dt.date) -> list[str]:
        """Remove hidden entries whose SPS start date is before ``before`` (the served ones
        are :meth:`wlmd.authoring.editor.AreaEditor.purge`'s)."""
        limit = before.strftime("%Y%m%d")
        with self.locked():
            names = [
                name
                for name, known in self._scan().items()
                if name.endswith(HIDDEN_SUFFIX) and known.sps_date and known.sps_date < limit
            ]
            for name in names:
                files.remove(self.path, name, sync=False)
            if names:
                files.sync_directory_of(self.path)
        return names

    # --- the parts ---------------------------------------------------------------------
    def _at(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _rename(self, old: str, new: str) -> None:
        try:
            os.rename(self._at(old), self._at(new))
        except OSError as exc:
            raise AreaProblem(f"cannot rename {self._at(old)} to {new}: {exc.strerror}") from exc
        files.sync_directory_of(self.path)

    def _scan(self) -> dict[str, _Known]:
        try:
            with os.scandir(self.path) as it:
                names = sorted(
                    e.name
                    for e in it
                    if e.name.endswith((WORKLIST_SUFFIX, WORKLIST_SUFFIX + HIDDEN_SUFFIX))
                )
        except OSError as exc:
            raise AreaProblem(f"cannot read storage area {self.path}: {exc.strerror}") from exc
        for gone in set(self._known) - set(names):
            del self._known[gone]
        for name in names:
            try:
                st = os.stat(self._at(name))
            except OSError:
                self._known.pop(name, None)
                continue
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
            known = self._known.get(name)
            if known is None or known.signature != signature:
                self._known[name] = _read(self._at(name), name, signature)
        return dict(self._known)


def _read(path: str, name: str, signature: tuple[int, int, int]) -> _Known:
    try:
        entry = load_entry(path, name)
    except WorklistFileError:
        return _Known(signature, None, "")
    steps = entry.sequence(keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE) or []
    sps_ids = tuple(_text(item.get(keys.SPS_ID)) for item in steps)
    candidate = Candidate(
        name,
        _text(entry.elements.get(keys.STUDY_INSTANCE_UID)),
        tuple(s for s in sps_ids if s),
        _text(entry.elements.get(_ACCESSION)),
    )
    return _Known(signature, candidate, sps_start_date(entry))


def _text(raw: object) -> str:
    if isinstance(raw, bytes):
        return raw.decode("latin-1").strip(" \x00")
    return ""
