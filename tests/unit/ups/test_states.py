"""Every (state, action, Transaction UID) of the UPS state machine against PS3.4 Table CC.1.1-2.

The expected table is written out here cell by cell from the standard (and
the choices wlmd documents in wlmd/ups/states.py), independently of the
module's own table.
"""

from __future__ import annotations

import itertools

import pytest

from wlmd.ups import states
from wlmd.ups.states import Action, State, Tuid

N, S, P, X, C = None, State.SCHEDULED, State.IN_PROGRESS, State.CANCELED, State.COMPLETED
COLUMNS = (N, S, P, X, C)  # no instance, then the four states

# Per (action, tuid): the outcome in each column as "STATUS" or "STATUS>NEWSTATE".
EXPECTED: dict[tuple[Action, Tuid], tuple[str, ...]] = {
    (Action.CREATE, Tuid.ABSENT): ("0000>S", "0111", "0111", "0111", "0111"),
    (Action.CLAIM, Tuid.ABSENT): ("C307", "C301", "C301", "C301", "C301"),
    (Action.CLAIM, Tuid.OTHER): ("C307", "0000>P", "C302", "C300", "C300"),
    (Action.CLAIM, Tuid.MATCHES): ("C307", "0000>P", "C302", "C300", "C300"),
    (Action.RESCHEDULE, Tuid.ABSENT): ("C307", "C303", "C303", "C303", "C303"),
    (Action.RESCHEDULE, Tuid.MATCHES): ("C307", "C303", "C303", "C303", "C303"),
    (Action.COMPLETE, Tuid.MATCHES): ("C307", "C310", "0000>C", "C300", "B306"),
    (Action.COMPLETE, Tuid.OTHER): ("C307", "C310", "C301", "C301", "C301"),
    (Action.COMPLETE, Tuid.ABSENT): ("C307", "C301", "C301", "C301", "C301"),
    (Action.CANCEL, Tuid.MATCHES): ("C307", "C310", "0000>X", "B304", "C300"),
    (Action.CANCEL, Tuid.OTHER): ("C307", "C310", "C301", "C301", "C301"),
    (Action.CANCEL, Tuid.ABSENT): ("C307", "C301", "C301", "C301", "C301"),
    (Action.REQUEST_CANCEL, Tuid.ABSENT): ("C307", "0000>X", "0000", "B304", "C311"),
    (Action.SET, Tuid.ABSENT): ("C307", "0000", "C301", "C300", "C300"),
    (Action.SET, Tuid.MATCHES): ("C307", "C310", "0000", "C300", "C300"),
    (Action.SET, Tuid.OTHER): ("C307", "C310", "C301", "C300", "C300"),
}
NEW_STATE = {"S": S, "P": P, "X": X, "C": C}


def _expected(action: Action, tuid: Tuid, column: int) -> tuple[int, State | None]:
    row = EXPECTED.get((action, tuid))
    if row is None:  # the remaining Transaction UID variants answer as the first row given
        row = next(v for (a, _), v in EXPECTED.items() if a is action)
    status, _, new = row[column].partition(">")
    return int(status, 16), NEW_STATE.get(new)


CASES = [
    pytest.param(
        state, action, tuid, id=f"{state.name if state else 'none'}-{action.name}-{tuid.name}"
    )
    for state, action, tuid in itertools.product(COLUMNS, Action, Tuid)
]


@pytest.mark.parametrize(("state", "action", "tuid"), CASES)
def test_every_pair_answers_as_the_standard(
    state: State | None, action: Action, tuid: Tuid
) -> None:
    status, new_state = _expected(action, tuid, COLUMNS.index(state))
    outcome = states.transition(state, action, tuid)
    assert (hex(outcome.status), outcome.state) == (hex(status), new_state)
    # A failure never moves the step.
    if states.is_failure(outcome.status):
        assert outcome.state is None


def test_final_state_requirements_decide_completion_and_cancellation() -> None:
    assert states.transition(P, Action.COMPLETE, Tuid.MATCHES).check_final
    assert states.transition(P, Action.CANCEL, Tuid.MATCHES).check_final
    assert not states.transition(S, Action.CLAIM, Tuid.OTHER).check_final


def test_request_cancel_of_scheduled_goes_through_in_progress() -> None:
    outcome = states.transition(S, Action.REQUEST_CANCEL)
    assert outcome.via_in_progress and outcome.state is X


def test_request_cancel_in_progress_needs_a_reachable_performer() -> None:
    asked = states.transition(P, Action.REQUEST_CANCEL)
    assert asked.cancel_requested and asked.state is None
    assert states.after_request_cancel(asked, True).status == states.SUCCESS
    refused = states.after_request_cancel(asked, False)
    assert refused.status == states.PERFORMER_CANNOT_BE_CONTACTED == 0xC312


@pytest.mark.parametrize(
    ("given", "stored", "expected"),
    [
        (None, None, Tuid.ABSENT),
        ("", "1.2", Tuid.ABSENT),
        ("1.2", "1.2", Tuid.MATCHES),
        ("1.3", "1.2", Tuid.OTHER),
        ("1.3", None, Tuid.OTHER),
    ],
)
def test_transaction_uid_comparison(given: str | None, stored: str | None, expected: Tuid) -> None:
    assert Tuid.compare(given, stored) is expected


@pytest.mark.parametrize(
    ("text", "state"),
    [("SCHEDULED", S), ("IN PROGRESS", P), ("CANCELED ", X), ("COMPLETED", C), ("DONE", None)],
)
def test_state_parse(text: str, state: State | None) -> None:
    assert State.parse(text) is state


def test_warnings_are_not_failures() -> None:
    for status in (0xB300, 0xB301, 0xB304, 0xB305, 0xB306, 0x0000):
        assert not states.is_failure(status)
    for status in (0xC300, 0xC302, 0x0111, 0x0120):
        assert states.is_failure(status)
