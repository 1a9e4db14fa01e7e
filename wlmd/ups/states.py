"""The UPS state machine: PS3.4 CC.1.1, Table CC.1.1-2, as one pure table.

A UPS is SCHEDULED when created (only N-CREATE makes one), becomes IN
PROGRESS when a performer claims it with a new Transaction UID, and ends
COMPLETED or CANCELED (the final states). :func:`transition` answers every
(current state, action, Transaction UID) combination with the standard's
status and the new state; the store applies it inside one transaction, so
two claimers see one after the other and the second gets 0xC302.

Where Table CC.1.1-2 leaves a choice, wlmd does what dcm4chee-arc does:

- Request Cancel of a SCHEDULED step cancels it at once (IN PROGRESS then
  CANCELED, both reported: CC.2.2.3); of an IN PROGRESS step it only emits
  Cancel Requested to the subscribers, and fails with 0xC312 when the
  performer (the AE that claimed it) is not among them.
- N-SET of a SCHEDULED step with a Transaction UID fails with 0xC310 (there
  is no transaction yet); IN PROGRESS needs the claimer's UID (0xC301).
- The Transaction UID is kept after a final state, so a performer repeating
  its COMPLETED or CANCELED request (after a lost response) gets the warning
  B306/B304, not a failure.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# --- statuses (PS3.4 CC.2.1-CC.2.8, PS3.7 Annex C) -------------------------------
SUCCESS = 0x0000
#: Warnings.
CREATED_WITH_MODIFICATIONS = 0xB300  # N-CREATE: attributes coerced or added
DELETION_LOCK_NOT_GRANTED = 0xB301  # N-ACTION subscribe
ALREADY_CANCELED = 0xB304  # already in the requested state of CANCELED
COERCED_INVALID_VALUES = 0xB305  # N-SET
ALREADY_COMPLETED = 0xB306  # already in the requested state of COMPLETED
#: General DIMSE failures (PS3.7 C.4).
NO_SUCH_ATTRIBUTE = 0x0105  # an attribute the operation does not allow
INVALID_ATTRIBUTE_VALUE = 0x0106
PROCESSING_FAILURE = 0x0110
DUPLICATE_SOP_INSTANCE = 0x0111
INVALID_ARGUMENT_VALUE = 0x0115
MISSING_ATTRIBUTE = 0x0120
MISSING_ATTRIBUTE_VALUE = 0x0121
NO_SUCH_ACTION_TYPE = 0x0123
#: UPS failures.
MAY_NO_LONGER_BE_UPDATED = 0xC300
TRANSACTION_UID_NOT_CORRECT = 0xC301
ALREADY_IN_PROGRESS = 0xC302
SCHEDULED_ONLY_BY_CREATE = 0xC303
FINAL_STATE_REQUIREMENTS_NOT_MET = 0xC304
NO_SUCH_UPS = 0xC307
UNKNOWN_RECEIVING_AE = 0xC308
CREATE_NOT_SCHEDULED = 0xC309
NOT_YET_IN_PROGRESS = 0xC310
ALREADY_COMPLETED_FAILURE = 0xC311  # Request Cancel of a COMPLETED step
PERFORMER_CANNOT_BE_CONTACTED = 0xC312
PERFORMER_CHOOSES_NOT_TO_CANCEL = 0xC313  # only a performer's own answer; never from wlmd
ACTION_NOT_APPROPRIATE = 0xC314
NO_EVENT_REPORTS = 0xC315

WARNINGS = frozenset(
    {
        CREATED_WITH_MODIFICATIONS,
        DELETION_LOCK_NOT_GRANTED,
        ALREADY_CANCELED,
        COERCED_INVALID_VALUES,
        ALREADY_COMPLETED,
    }
)


def is_failure(status: int) -> bool:
    """Neither success nor one of the warnings: nothing was changed."""
    return status != SUCCESS and status not in WARNINGS


class State(enum.Enum):
    """Procedure Step State (0074,1000) values (PS3.3 C.30.1)."""

    SCHEDULED = "SCHEDULED"
    IN_PROGRESS = "IN PROGRESS"
    CANCELED = "CANCELED"
    COMPLETED = "COMPLETED"

    @property
    def is_final(self) -> bool:
        return self in (State.CANCELED, State.COMPLETED)

    @classmethod
    def parse(cls, text: str) -> State | None:
        """The state named by a CS value (padding stripped), None if it names none."""
        try:
            return cls(text.strip(" \x00"))
        except ValueError:
            return None


class Action(enum.Enum):
    """What a request asks of an existing (or missing) UPS."""

    CREATE = "N-CREATE"
    SET = "N-SET"
    CLAIM = "change state to IN PROGRESS"
    RESCHEDULE = "change state to SCHEDULED"
    COMPLETE = "change state to COMPLETED"
    CANCEL = "change state to CANCELED"
    REQUEST_CANCEL = "request cancel"


class Tuid(enum.Enum):
    """The request's Transaction UID (0008,1195) compared with the stored one."""

    ABSENT = "absent"
    MATCHES = "matches"
    OTHER = "other"  # present, and not the stored one (in SCHEDULED: any)

    @classmethod
    def compare(cls, given: str | None, stored: str | None) -> Tuid:
        if not given:
            return cls.ABSENT
        return cls.MATCHES if stored and given == stored else cls.OTHER


@dataclass(frozen=True)
class Outcome:
    """The answer of the state machine: a status, and what happens to the step.

    ``state`` is the new state, or None when the step is left as it is.
    ``via_in_progress`` marks Request Cancel of a SCHEDULED step (two State
    Reports). ``cancel_requested`` asks the store to emit Cancel Requested.
    ``check_final`` says the final-state requirements (CC.2.5.1.1) decide:
    when they are not met the status becomes 0xC304 and nothing changes.
    """

    status: int
    state: State | None = None
    via_in_progress: bool = False
    cancel_requested: bool = False
    check_final: bool = False


_S, _P, _X, _C = State.SCHEDULED, State.IN_PROGRESS, State.CANCELED, State.COMPLETED
_OK = Outcome(SUCCESS)


def _row(
    scheduled: Outcome, in_progress: Outcome, canceled: Outcome, completed: Outcome
) -> dict[State, Outcome]:
    return {_S: scheduled, _P: in_progress, _X: canceled, _C: completed}


def _all(outcome: Outcome) -> dict[State, Outcome]:
    return _row(outcome, outcome, outcome, outcome)


_WRONG_TUID = Outcome(TRANSACTION_UID_NOT_CORRECT)
_FINAL = Outcome(MAY_NO_LONGER_BE_UPDATED)
_NOT_YET = Outcome(NOT_YET_IN_PROGRESS)

#: Table CC.1.1-2, one row per (action, Transaction UID): state -> outcome.
#: Claiming needs *a* (new) Transaction UID; completing, canceling and N-SET
#: of an IN PROGRESS step need *the* one of the claim.
TABLE: dict[tuple[Action, Tuid], dict[State, Outcome]] = {
    (Action.CREATE, Tuid.ABSENT): _all(Outcome(DUPLICATE_SOP_INSTANCE)),
    (Action.CLAIM, Tuid.ABSENT): _all(_WRONG_TUID),
    (Action.CLAIM, Tuid.OTHER): _row(
        Outcome(SUCCESS, _P), Outcome(ALREADY_IN_PROGRESS), _FINAL, _FINAL
    ),
    (Action.CLAIM, Tuid.MATCHES): _row(
        Outcome(SUCCESS, _P), Outcome(ALREADY_IN_PROGRESS), _FINAL, _FINAL
    ),
    (Action.COMPLETE, Tuid.MATCHES): _row(
        _NOT_YET, Outcome(SUCCESS, _C, check_final=True), _FINAL, Outcome(ALREADY_COMPLETED)
    ),
    (Action.COMPLETE, Tuid.ABSENT): _all(_WRONG_TUID),
    # A SCHEDULED step has no Transaction UID yet: one given cannot be judged
    # right or wrong, and "not yet in progress" (C310) is what the performer
    # needs to hear (dcm4chee answers the same); absent, it is C301 as the table says.
    (Action.COMPLETE, Tuid.OTHER): _row(_NOT_YET, _WRONG_TUID, _WRONG_TUID, _WRONG_TUID),
    (Action.CANCEL, Tuid.MATCHES): _row(
        _NOT_YET, Outcome(SUCCESS, _X, check_final=True), Outcome(ALREADY_CANCELED), _FINAL
    ),
    (Action.CANCEL, Tuid.ABSENT): _all(_WRONG_TUID),
    (Action.CANCEL, Tuid.OTHER): _row(_NOT_YET, _WRONG_TUID, _WRONG_TUID, _WRONG_TUID),
    (Action.REQUEST_CANCEL, Tuid.ABSENT): _row(
        Outcome(SUCCESS, _X, via_in_progress=True),
        Outcome(SUCCESS, cancel_requested=True),
        Outcome(ALREADY_CANCELED),
        Outcome(ALREADY_COMPLETED_FAILURE),
    ),
    (Action.SET, Tuid.ABSENT): _row(_OK, _WRONG_TUID, _FINAL, _FINAL),
    (Action.SET, Tuid.MATCHES): _row(_NOT_YET, _OK, _FINAL, _FINAL),
    (Action.SET, Tuid.OTHER): _row(_NOT_YET, _WRONG_TUID, _FINAL, _FINAL),
}
for _tuid in Tuid:
    TABLE[(Action.RESCHEDULE, _tuid)] = _all(Outcome(SCHEDULED_ONLY_BY_CREATE))
    TABLE.setdefault((Action.CREATE, _tuid), TABLE[(Action.CREATE, Tuid.ABSENT)])
    # Request Cancel carries no Transaction UID (CC.2.2.1): one given is ignored.
    TABLE.setdefault((Action.REQUEST_CANCEL, _tuid), TABLE[(Action.REQUEST_CANCEL, Tuid.ABSENT)])


def transition(state: State | None, action: Action, tuid: Tuid = Tuid.ABSENT) -> Outcome:
    """What ``action`` does to a step in ``state`` (None: there is no such step).

    N-CREATE of a new instance makes it SCHEDULED; every other action on a
    missing instance is 0xC307 (CC.2.1.3, CC.2.2.3, CC.2.6.3).
    """
    if state is None:
        if action is Action.CREATE:
            return Outcome(SUCCESS, _S)
        return Outcome(NO_SUCH_UPS)
    return TABLE[(action, tuid)][state]


def action_for_target(target: State) -> Action:
    """The N-ACTION Change State (type 1) action that asks for ``target``."""
    return {
        State.SCHEDULED: Action.RESCHEDULE,
        State.IN_PROGRESS: Action.CLAIM,
        State.COMPLETED: Action.COMPLETE,
        State.CANCELED: Action.CANCEL,
    }[target]


def after_request_cancel(outcome: Outcome, performer_reachable: bool) -> Outcome:
    """Request Cancel of an IN PROGRESS step fails with 0xC312 when no one can tell
    the performer (it has no subscription to receive Cancel Requested; CC.2.2.3)."""
    if outcome.cancel_requested and not performer_reachable:
        return Outcome(PERFORMER_CANNOT_BE_CONTACTED)
    return outcome
