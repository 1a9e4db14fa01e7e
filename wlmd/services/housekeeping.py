"""Housekeeping: the MPPS entry policy's file changes, and the scheduled purges.

Two jobs, one :class:`Housekeeper` (no network; the clock is injected, so the
tests run days in a moment):

* :meth:`Housekeeper.apply_policy` — one pass of ``--mpps-entry-policy``
  (:mod:`wlmd.mpps.policy`) over the MPPS that may still need an action:
  hide the entry of an IN PROGRESS step, put a DISCONTINUED one's back,
  remove a COMPLETED one's ``--mpps-remove-delay`` seconds after. The helper
  child runs it every :data:`POLICY_POLL` seconds, so another station that
  polls the worklist a few seconds after the modality started no longer sees
  the patient, while the N-CREATE response never waits for the area's write
  lock or a scan of it (the worker only commits the MPPS, as before). The
  file change is made durable first and recorded in the MPPS row after: a
  crash in between (or an MPPS committed while the helper was down) is
  repaired by the next pass, which finds the file already in its state.
* :meth:`Housekeeper.run` — every ``--housekeeping-interval`` seconds: the
  policy pass, entries whose SPS start date is more than
  ``--purge-after-days`` days ago (every storage area, served and hidden),
  and final MPPS older than ``--mpps-keep``. UPS steps stay with the event
  sender's ``--ups-keep-final`` housekeeping (it owns that store's loop);
  this does not repeat it. Counts only in the log.

``wlmctl purge --housekeeping`` runs :meth:`Housekeeper.run` once, on demand.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from wlmd.authoring.editor import AreaEditor
from wlmd.authoring.errors import AuthoringError
from wlmd.authoring.performed import PerformedEntries
from wlmd.mpps.policy import HIDDEN_SUFFIX, Action, Done, Policy, decide, select
from wlmd.settings.config import Config
from wlmd.state.mpps import EntryWork, MppsRepository
from wlmd.worklist.layout import storage_area_names

LOG = logging.getLogger("wlmd.housekeeping")

#: Seconds between policy passes (a query of the mpps table's open rows by index).
POLICY_POLL = 0.5
#: A change that failed (the lock held too long, permissions) is tried again after
#: 1 s, doubling to a minute: one warning per try, never one per pass.
RETRY_FIRST = 1.0
RETRY_MAX = 60.0

_PAST = {
    Action.HIDE: "hidden",
    Action.KEEP: "kept hidden",
    Action.RESTORE: "put back",
    Action.REMOVE: "removed",
}


@dataclass
class Counts:
    """What one run did, for its log line and for wlmctl."""

    actions: dict[str, int] = field(default_factory=dict)
    unmatched: int = 0
    purged: int = 0
    mpps_deleted: int = 0
    failed: int = 0

    def add(self, action: str) -> None:
        self.actions[action] = self.actions.get(action, 0) + 1

    def describe(self) -> str:
        done = ", ".join(f"{n} {a}" for a, n in sorted(self.actions.items())) or "none"
        return (
            f"MPPS entries: {done}, {self.unmatched} unmatched; {self.purged} entries past "
            f"--purge-after-days removed; {self.mpps_deleted} final MPPS deleted"
            + (f"; {self.failed} failed" if self.failed else "")
        )


class Housekeeper:
    """The policy pass and the scheduled purges for one configuration."""

    def __init__(
        self,
        config: Config,
        store: MppsRepository | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.policy = Policy(config.mpps_entry_policy)
        self.lock_timeout = float(config.lock_timeout) if config.lock_timeout else 30.0
        self.entries: PerformedEntries | None = None
        #: MPPS whose change failed: uid -> (clock time of the next try, the wait)
        self._resting: dict[str, tuple[float, float]] = {}
        if self.policy is not Policy.LEAVE and config.mpps_area:
            path = os.path.join(config.data_files_path, config.mpps_area.rstrip(" "))
            self.entries = PerformedEntries(path, self.lock_timeout)

    # --- the MPPS entry policy -----------------------------------------------------------
    def apply_policy(self, counts: Counts | None = None) -> Counts:
        """One pass over the open MPPS rows; one info line per action taken."""
        counts = counts or Counts()
        if self.store is None or self.entries is None:
            return counts
        now = self.clock()
        delay = float(self.config.mpps_remove_delay)
        for work in self.store.open_entries():
            action = self._decide(work, now, delay)
            if action is Action.NONE or self._resting.get(work.uid, (0.0, 0.0))[0] > now:
                continue
            try:
                self._apply(work, action, counts)
            except AuthoringError as exc:  # the area's lock, permissions: tried again later
                counts.failed += 1
                wait = min(RETRY_MAX, 2 * self._resting.get(work.uid, (0.0, RETRY_FIRST / 2))[1])
                self._resting[work.uid] = (now + wait, wait)
                LOG.warning(
                    "MPPS %s: entry not %s: %s (again in %g s)",
                    work.uid,
                    _PAST[action],
                    exc.reason,
                    wait,
                )
            else:
                self._resting.pop(work.uid, None)
        return counts

    def _decide(self, work: EntryWork, now: float, delay: float) -> Action:
        return decide(self.policy, work.status, work.done, work.final_at, now, delay)

    def _apply(self, work: EntryWork, action: Action, counts: Counts) -> None:
        assert self.store is not None and self.entries is not None
        if action is Action.LEAVE:
            self.store.record_entry(work.uid, Done.LEFT, work.entry_name)
            return
        if not work.entry_name:
            self.entries.candidates()  # changed files read before the lock: queries never wait
        with self.entries.locked():
            base = work.entry_name
            if not base:  # first action on this step: find its entry
                chosen = select(self.entries.candidates(), work.link)
                if not chosen.found:
                    self.store.record_entry(work.uid, Done.UNMATCHED, "")
                    counts.unmatched += 1
                    LOG.info("MPPS %s%s: entry left alone: %s", work.uid, _ids(work), chosen.reason)
                    return
                base = _base(chosen.names[0])
            if action in (Action.HIDE, Action.KEEP):
                changed = self.entries.hide(base)
                done = Done.HIDDEN if action is Action.HIDE else Done.KEPT
            elif action is Action.RESTORE:
                changed = self.entries.restore(base)
                done = Done.RESTORED
            else:
                changed = self.entries.remove(base) > 0
                done = Done.REMOVED
            self.store.record_entry(work.uid, done, base)
        counts.add(_PAST[action])
        LOG.info(
            "MPPS %s%s: entry %s %s%s",
            work.uid,
            _ids(work),
            base,
            _PAST[action],
            "" if changed else " (found so already)",
        )

    # --- the scheduled run ----------------------------------------------------------------
    def run(self) -> Counts:
        """Everything housekeeping does, once; one info line with the counts."""
        started = time.monotonic()
        counts = self.apply_policy()
        days = self.config.purge_after_days
        if days:
            today = _dt.datetime.fromtimestamp(self.clock()).date()
            counts.purged = self._purge(today - _dt.timedelta(days=days), counts)
        if self.store is not None and self.config.mpps_keep:
            counts.mpps_deleted = self.store.purge_final(float(self.config.mpps_keep))
        LOG.info("housekeeping: %s (%.1f s)", counts.describe(), time.monotonic() - started)
        return counts

    def _purge(self, before: _dt.date, counts: Counts) -> int:
        removed = 0
        try:
            areas = storage_area_names(self.config.data_files_path)
        except OSError as exc:
            counts.failed += 1
            LOG.warning("housekeeping: %s not purged: %s", self.config.data_files_path, exc)
            return 0
        for area in areas:
            path = os.path.join(self.config.data_files_path, area)
            try:
                removed += len(
                    AreaEditor(self.config.data_files_path, area, self.lock_timeout).purge(before)
                )
                removed += len(PerformedEntries(path, self.lock_timeout).purge_hidden(before))
            except AuthoringError as exc:
                counts.failed += 1
                LOG.warning("housekeeping: storage area %s not purged: %s", area, exc.reason)
        return removed


def _base(name: str) -> str:
    return name[: -len(HIDDEN_SUFFIX)] if name.endswith(HIDDEN_SUFFIX) else name


def _ids(work: EntryWork) -> str:
    """Study and SPS ID / accession: identifiers, not patient data."""
    link = work.link
    step = f"SPS {link.sps_id}" if link.sps_id else f"accession {link.accession_number or '-'}"
    return f" (study {link.study_instance_uid}, {step})"
