"""What an MPPS does to the worklist entry it performs (``--mpps-entry-policy``), as pure functions.

The issue asked for three behaviours: leave the entry; hide it from other
stations while the step is IN PROGRESS (so two modalities do not pick the
same patient); remove it once the step ended, after a delay. The policies:

========== ============ ===================== ==================
policy     IN PROGRESS  COMPLETED             DISCONTINUED
========== ============ ===================== ==================
leave      \\-           \\-                    \\-
hide       hide         stays hidden          put back
remove     \\-           remove after delay    \\-
hide-remove hide        hidden, then removed  put back
========== ============ ===================== ==================

DISCONTINUED puts the entry back (and is never removed by the policy):
IHE RAD TF-2 4.7 (RAD-7) says a discontinued step means the procedure was
not (fully) done, and the Department System Scheduler decides whether the
order is rescheduled, repeated or cancelled; until it does, the entry must
stay selectable, or the technologist who repeats the exam types the patient
in by hand, which is what a worklist is there to prevent. A wrongly kept
entry costs a stale line (which the RIS or ``--purge-after-days`` removes);
a wrongly removed one costs a mistyped patient.

The entry is matched by Study Instance UID + SPS ID from the Scheduled Step
Attributes Sequence, by the accession number when the modality sent no SPS
ID; never guessed: no candidate, or several, is an outcome with a reason and
nothing is changed (:func:`select`).

Each MPPS row carries what was done to its entry (:class:`Done`), so a pass
is idempotent and a crash between the MPPS commit and the file change is
repaired by the next pass: the decision depends only on the row.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from wlmd.mpps import rules

#: A hidden entry's name: ``NAME.wl`` + this. wlmscpfs and wlmd read ``*.wl`` only
#: (DCMTK wlmsetup.txt), so neither serves it; it stays in its area, on the same file
#: system, and is put back by one atomic rename.
HIDDEN_SUFFIX = ".inprogress"


class Policy(enum.Enum):
    LEAVE = "leave"
    HIDE = "hide"
    REMOVE = "remove"
    HIDE_REMOVE = "hide-remove"

    @property
    def hides(self) -> bool:
        return self in (Policy.HIDE, Policy.HIDE_REMOVE)

    @property
    def removes(self) -> bool:
        return self in (Policy.REMOVE, Policy.HIDE_REMOVE)


POLICY_NAMES = tuple(p.value for p in Policy)


class Done(enum.Enum):
    """What has been done to an MPPS's entry (the ``entry_state`` column)."""

    NOTHING = ""
    HIDDEN = "hidden"
    #: terminal states: the pass does not look at the row again
    KEPT = "kept"  # COMPLETED under ``hide``: hidden for good (SPS-age purge removes it)
    RESTORED = "restored"
    REMOVED = "removed"
    UNMATCHED = "unmatched"  # no entry, or several: nothing changed
    LEFT = "left"  # the policy does nothing for this step (e.g. DISCONTINUED under remove)


#: The states a pass still has to look at.
OPEN = (Done.NOTHING, Done.HIDDEN)


class Action(enum.Enum):
    NONE = "none"  # nothing now, look again later
    HIDE = "hide"
    KEEP = "keep"  # hide if not hidden yet, and record that it stays hidden
    RESTORE = "restore"
    REMOVE = "remove"
    LEAVE = "leave"  # record that nothing is to be done, ever


def decide(
    policy: Policy,
    status: str,
    done: Done,
    final_at: float | None,
    now: float,
    remove_delay: float,
) -> Action:
    """The action a pass takes for one MPPS (the table in the module docstring)."""
    if done not in OPEN:
        return Action.NONE
    if status == rules.IN_PROGRESS:
        return Action.HIDE if policy.hides and done is Done.NOTHING else Action.NONE
    if status == rules.DISCONTINUED:
        if policy.hides and done is Done.HIDDEN:
            return Action.RESTORE
        return Action.LEAVE
    if status == rules.COMPLETED:
        if policy.removes and final_at is not None and now >= final_at + remove_delay:
            return Action.REMOVE
        if policy is Policy.HIDE:
            return Action.KEEP  # hidden (now, if the pass never saw it IN PROGRESS) for good
        if policy.hides and done is Done.NOTHING:
            return Action.HIDE  # ended before a pass saw it: hidden until its removal
        return Action.NONE if policy.removes else Action.LEAVE
    return Action.LEAVE  # a status the rules never store


@dataclass(frozen=True)
class Candidate:
    """One entry file of the area as the policy sees it: its name and identity."""

    name: str  # NAME.wl or NAME.wl.inprogress
    study_instance_uid: str
    sps_ids: tuple[str, ...]
    accession_number: str

    @property
    def hidden(self) -> bool:
        return self.name.endswith(HIDDEN_SUFFIX)

    @property
    def base(self) -> str:
        """The served name (``NAME.wl``), hidden or not."""
        return self.name[: -len(HIDDEN_SUFFIX)] if self.hidden else self.name


@dataclass(frozen=True)
class Selected:
    """The files of the one matching entry (its served and/or hidden name), or why none."""

    names: tuple[str, ...] = ()
    reason: str = ""

    @property
    def found(self) -> bool:
        return bool(self.names)


def matches(candidate: Candidate, link: rules.Link) -> bool:
    """Study + SPS ID when the MPPS names an SPS ID; else the accession number (with the
    study when the entry has one).

    An entry without a Study Instance UID makes the modality generate one (IHE RAD
    TF-2 4.6, RAD-6), which the entry cannot match: there the SPS ID must come with
    the accession number, never the SPS ID alone (SPS IDs are often short counters).
    """
    same_study = candidate.study_instance_uid == link.study_instance_uid
    same_accession = bool(link.accession_number) and (
        candidate.accession_number == link.accession_number
    )
    if link.sps_id:
        if link.sps_id not in candidate.sps_ids:
            return False
        return same_study if candidate.study_instance_uid else same_accession
    return same_accession and (not candidate.study_instance_uid or same_study)


def select(candidates: Iterable[Candidate], link: rules.Link) -> Selected:
    """The one entry the MPPS performs; no guess when there are none or several.

    A served ``NAME.wl`` and a hidden ``NAME.wl.inprogress`` of the same name are
    one entry (the RIS re-sent the order while it was hidden).
    """
    if not link.sps_id and not link.accession_number:
        return Selected(reason="the MPPS names neither an SPS ID nor an accession number")
    found = sorted((c for c in candidates if matches(c, link)), key=lambda c: c.name)
    bases = sorted({c.base for c in found})
    by = "study and SPS ID" if link.sps_id else "accession number"
    if not bases:
        return Selected(reason=f"no entry with this {by}")
    if len(bases) > 1:
        return Selected(reason=f"{len(bases)} entries with this {by}: {', '.join(bases)}")
    return Selected(tuple(c.name for c in found))
