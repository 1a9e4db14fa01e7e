"""One storage area as a writer sees it: create or replace, list, get, remove, purge.

This is the authoring API (``wlmctl`` is one client, a REST layer would be
another): every change is made under the area's write lock
(:mod:`wlmd.authoring.locking`), every file is checked by the server's own
judge before it is renamed into place (:mod:`wlmd.authoring.verdict`), and
every read goes through the server's parser under the read lock, so what a
writer lists is what a query sees. Errors are :class:`AuthoringError`
subclasses whose ``reason`` is one line (the server's skip reason for a
refused entry).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom import dcmread
from pydicom.dataset import Dataset

from wlmd.authoring import compose, files
from wlmd.authoring.errors import AreaProblem, AuthoringError, BadInput, NotFound
from wlmd.authoring.locking import DEFAULT_LOCK_TIMEOUT, write_locked
from wlmd.authoring.selection import Selection, sps_start_date
from wlmd.authoring.verdict import judge_file, require_served
from wlmd.worklist import keys
from wlmd.worklist.entry import Item, WorklistEntry, WorklistFileError, load_entry
from wlmd.worklist.layout import LOCKFILE_NAME, WORKLIST_SUFFIX, AreaUnavailable, is_valid_area_name
from wlmd.worklist.lockfile import read_locked

#: Entries written per hold of the write lock by :meth:`AreaEditor.put_many`: queries
#: wait for at most one batch (a few hundred milliseconds), never for a whole import.
BATCH = 200

_USED_TAGS = {
    "StudyInstanceUID": (keys.STUDY_INSTANCE_UID, False),
    "RequestedProcedureID": (keys.REQUESTED_PROCEDURE_ID, False),
    "AccessionNumber": (keys.tag("AccessionNumber"), False),
    "ScheduledProcedureStepID": (keys.SPS_ID, True),
}


@dataclass(frozen=True, slots=True)
class Written:
    """The outcome of one create/update: the file name, whether it replaced one, what
    was generated (keyword -> value)."""

    name: str
    replaced: bool
    generated: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Listed:
    """One ``.wl`` file of the area: its entry, or why the server skips it."""

    name: str
    entry: WorklistEntry | None
    problem: str | None


@dataclass(frozen=True, slots=True)
class _Ready:
    """An entry prepared for writing."""

    name: str
    data: bytes
    written: Written
    values: dict[str, str]


@dataclass(slots=True)
class _Seen:
    signature: tuple[int, int, int]
    values: dict[str, str]


class AreaEditor:
    """Writes and reads the storage area ``data_files_path/area`` by the lock protocol."""

    def __init__(
        self,
        data_files_path: str,
        area: str,
        lock_timeout: float | None = DEFAULT_LOCK_TIMEOUT,
        generation: compose.Generation | None = None,
    ) -> None:
        if not is_valid_area_name(area):
            raise AreaProblem(
                f"{area!r} cannot name a storage area (1-16 letters, digits, space, - : @ _)"
            )
        self.path = os.path.join(data_files_path, area.rstrip(" "))
        self.lock_timeout = lock_timeout
        self.generation = generation or compose.Generation()
        self._seen: dict[str, _Seen] = {}

    # --- changes (each under the write lock) -----------------------------------------
    def put(self, ds: Dataset) -> Written:
        """Create or replace the entry for the order ``ds`` describes.

        Raises :class:`~wlmd.authoring.errors.EntryRejected` with the server's
        reason when the server would skip the result.
        """
        with write_locked(self.path, self.lock_timeout):
            ready = self._prepare(ds, compose.UsedValues(), scan=True, batch={})
            files.put(self.path, ready.name, ready.data, check=self._check(ready.name))
            return ready.written

    def put_many(
        self,
        datasets: Iterable[Dataset | AuthoringError],
        on_done: Callable[[int, Written | AuthoringError], None] = lambda _n, _r: None,
    ) -> list[Written | AuthoringError]:
        """:meth:`put` for many, :data:`BATCH` per lock hold; a refused one does not stop
        the rest. ``datasets`` may yield an error for an input that could not be read:
        it is passed through. ``on_done(count, result)`` is called after each.

        A batch's files are written first, made durable with one ``syncfs`` (instead
        of an fsync each: a fraction of the time on a busy disk), then checked and
        renamed one by one, and the directory is flushed once.
        """
        results: list[Written | AuthoringError] = []
        pending = iter(datasets)
        while batch := [item for _, item in zip(range(BATCH), pending, strict=False)]:
            with write_locked(self.path, self.lock_timeout):
                for result in self._put_batch(batch):
                    results.append(result)
                    on_done(len(results), result)
        return results

    def _put_batch(self, batch: list[Dataset | AuthoringError]) -> list[Written | AuthoringError]:
        used = self._used_values()
        outcomes: list[Written | AuthoringError | tuple[_Ready, str]] = []
        names: dict[str, Dataset] = {}
        staged: list[str] = []
        try:
            for item in batch:
                if isinstance(item, AuthoringError):
                    outcomes.append(item)
                    continue
                try:
                    ready = self._prepare(item, used, scan=False, batch=names)
                except AreaProblem:
                    raise
                except AuthoringError as exc:
                    outcomes.append(exc)
                    continue
                tmp = files.stage(self.path, ready.data, flush=False)
                staged.append(tmp)
                outcomes.append((ready, tmp))
            files.flush_staged(self.path, staged)
        except BaseException:
            for tmp in staged:
                files.discard(tmp)
            raise
        results: list[Written | AuthoringError] = []
        for number, outcome in enumerate(outcomes):
            if not isinstance(outcome, tuple):
                results.append(outcome)
                continue
            ready, tmp = outcome
            try:
                files.commit(self.path, tmp, ready.name, self._check(ready.name))
            except AreaProblem:
                for later in outcomes[number + 1 :]:
                    if isinstance(later, tuple):
                        files.discard(later[1])
                raise
            except AuthoringError as exc:
                results.append(exc)
                continue
            self._remember(ready)
            results.append(ready.written)
        files.sync_directory_of(self.path)
        return results

    def remove(self, names: Iterable[str]) -> list[str]:
        """Remove the named entries; raises NotFound naming the first that is not there."""
        names = list(names)
        for name in names:
            _check_name(name)
        with write_locked(self.path, self.lock_timeout):
            missing = [n for n in names if not os.path.isfile(os.path.join(self.path, n))]
            if missing:
                raise NotFound(f"no entry {missing[0]} in {self.path}")
            for name in names:
                files.remove(self.path, name, sync=False)
            files.sync_directory_of(self.path)
        return names

    def remove_where(self, selection: Selection) -> list[str]:
        """Remove every entry the selection matches (served entries only); their names."""
        with write_locked(self.path, self.lock_timeout):
            names = [
                item.name
                for item in self._scan()
                if item.entry is not None and selection.matches(item.entry)
            ]
            for name in names:
                files.remove(self.path, name, sync=False)
            files.sync_directory_of(self.path)
        return names

    def purge(self, before: _dt.date) -> list[str]:
        """Remove the entries whose SPS start date is before ``before``; their names.

        Files the server skips are left alone unless they parse and carry a date:
        an incomplete old entry is as stale as a complete one.
        """
        limit = before.strftime("%Y%m%d")
        with write_locked(self.path, self.lock_timeout):
            names = []
            for name in self._names():
                try:
                    entry = load_entry(os.path.join(self.path, name), name)
                except WorklistFileError:
                    continue
                date = sps_start_date(entry)
                if date and date < limit:
                    names.append(name)
            for name in names:
                files.remove(self.path, name, sync=False)
            files.sync_directory_of(self.path)
        return names

    # --- reading (under the read lock, as a query) ------------------------------------
    def entries(self, selection: Selection | None = None) -> list[Listed]:
        """Every ``.wl`` file by name with the server's verdict; served entries that
        do not match ``selection`` are left out (skipped files only without one)."""
        with self._read_locked():
            listed = self._scan()
        if selection is None:
            return listed
        return [i for i in listed if i.entry is not None and selection.matches(i.entry)]

    def get(self, name: str) -> Dataset:
        """The data set of one entry as stored (with its file meta)."""
        _check_name(name)
        path = os.path.join(self.path, name)
        with self._read_locked():
            try:
                return dcmread(path, force=True)
            except FileNotFoundError:
                raise NotFound(f"no entry {name} in {self.path}") from None
            except Exception as exc:
                raise AuthoringError(f"{path}: not a readable DICOM file ({exc})") from exc

    def path_of(self, name: str) -> str:
        _check_name(name)
        return os.path.join(self.path, name)

    # --- the parts ---------------------------------------------------------------------
    def _prepare(
        self, ds: Dataset, used: compose.UsedValues, scan: bool, batch: dict[str, Dataset]
    ) -> _Ready:
        """The file for ``ds``: its name by order identity, generated values, bytes.

        ``batch`` holds the entries prepared earlier in the same batch by name (one
        order given twice in an import: the second replaces the first).
        """
        entry = compose.prepared(ds)
        name = compose.order_name(entry)
        previous = None
        if name is not None:
            previous = batch[name] if name in batch else self._previous(name)
        needs_values = any(
            not compose.value_of(entry, k, in_sps) for k, in_sps in compose.GENERATED
        )
        if needs_values and previous is None and scan:
            used = self._used_values()
        generated = compose.fill_generated(entry, self.generation, used, previous)
        name = name or compose.order_name(entry)
        if name is None:
            raise BadInput(
                "no order identity: give StudyInstanceUID and ScheduledProcedureStepID, "
                "or AccessionNumber (or let them be generated)"
            )
        data = compose.encode(entry)
        replaced = name in batch or os.path.exists(os.path.join(self.path, name))
        batch[name] = entry
        values = {
            keyword: compose.value_of(entry, keyword, _USED_TAGS[keyword][1])
            for keyword in compose.GENERATED_KEYWORDS
        }
        for keyword, value in values.items():
            used.add(keyword, value)
        return _Ready(name, data, Written(name, replaced, generated), values)

    def _check(self, name: str) -> Callable[[str], None]:
        return lambda tmp: _served(tmp, name, self.path)

    def _remember(self, ready: _Ready) -> None:
        """The values of a file just written, so the next batch need not read it."""
        try:
            st = os.stat(os.path.join(self.path, ready.name))
        except OSError:
            return
        self._seen[ready.name] = _Seen((st.st_ino, st.st_size, st.st_mtime_ns), ready.values)

    def _previous(self, name: str) -> Dataset | None:
        path = os.path.join(self.path, name)
        if not os.path.exists(path):
            return None
        try:
            return dcmread(path, force=True)
        except Exception:
            return None  # a broken file of that name is simply replaced

    def _used_values(self) -> compose.UsedValues:
        """The generated attributes' values in the area (re-reads changed files only)."""
        used = compose.UsedValues()
        names = self._names()
        for gone in set(self._seen) - set(names):
            del self._seen[gone]
        for name in names:
            path = os.path.join(self.path, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            signature = (st.st_ino, st.st_size, st.st_mtime_ns)
            seen = self._seen.get(name)
            if seen is None or seen.signature != signature:
                seen = _Seen(signature, _values(path, name))
                self._seen[name] = seen
            for keyword, value in seen.values.items():
                used.add(keyword, value)
        return used

    def _scan(self) -> list[Listed]:
        listed = []
        for name in self._names():
            entry, problem = judge_file(os.path.join(self.path, name), name, self.path)
            listed.append(Listed(name, entry, problem))
        return listed

    def _names(self) -> list[str]:
        try:
            with os.scandir(self.path) as it:
                return sorted(e.name for e in it if e.name.endswith(WORKLIST_SUFFIX))
        except OSError as exc:
            raise AreaProblem(f"cannot read storage area {self.path}: {exc.strerror}") from exc

    @contextmanager
    def _read_locked(self) -> Iterator[None]:
        if not os.path.isdir(self.path):
            raise AreaProblem(f"no storage area {self.path}")
        try:
            with read_locked(os.path.join(self.path, LOCKFILE_NAME), self.lock_timeout):
                yield
        except AreaUnavailable as exc:
            raise AreaProblem(str(exc)) from exc


def _served(tmp: str, name: str, area_path: str) -> None:
    require_served(tmp, name, area_path)


def _check_name(name: str) -> None:
    if not name.endswith(WORKLIST_SUFFIX) or "/" in name or name.startswith("."):
        raise BadInput(f"{name!r} is not the name of a worklist file (NAME.wl)")


def _values(path: str, name: str) -> dict[str, str]:
    try:
        entry = load_entry(path, name)
    except WorklistFileError:
        return {}
    values = {}
    for keyword, (tag, in_sps) in _USED_TAGS.items():
        holder: Item = entry.elements
        if in_sps:
            items = entry.sequence(keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE) or [{}]
            holder = items[0] if items else {}
        raw = holder.get(tag)
        if isinstance(raw, bytes):
            values[keyword] = raw.decode("latin-1").strip()
    return values
