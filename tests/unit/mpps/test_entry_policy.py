"""The MPPS entry policy's pure parts: the decision table and the choice of the entry."""

from __future__ import annotations

import pytest

from wlmd.mpps import rules
from wlmd.mpps.policy import Action, Candidate, Done, Policy, decide, select

IP, CO, DC = rules.IN_PROGRESS, rules.COMPLETED, rules.DISCONTINUED
N, H = Done.NOTHING, Done.HIDDEN


@pytest.mark.parametrize(
    ("policy", "status", "done", "due", "action"),
    [
        # leave: never anything
        (Policy.LEAVE, IP, N, False, Action.NONE),
        (Policy.LEAVE, CO, N, True, Action.LEAVE),
        (Policy.LEAVE, DC, N, True, Action.LEAVE),
        # hide: hidden while in progress, kept after COMPLETED, back after DISCONTINUED
        (Policy.HIDE, IP, N, False, Action.HIDE),
        (Policy.HIDE, IP, H, False, Action.NONE),
        (Policy.HIDE, CO, H, True, Action.KEEP),
        (Policy.HIDE, CO, N, True, Action.KEEP),  # completed before a pass saw it
        (Policy.HIDE, DC, H, True, Action.RESTORE),
        (Policy.HIDE, DC, N, True, Action.LEAVE),  # never hidden: nothing to put back
        # remove: after COMPLETED and the delay only
        (Policy.REMOVE, IP, N, False, Action.NONE),
        (Policy.REMOVE, CO, N, False, Action.NONE),
        (Policy.REMOVE, CO, N, True, Action.REMOVE),
        (Policy.REMOVE, DC, N, True, Action.LEAVE),
        # hide-remove
        (Policy.HIDE_REMOVE, IP, N, False, Action.HIDE),
        (Policy.HIDE_REMOVE, CO, H, False, Action.NONE),
        (Policy.HIDE_REMOVE, CO, N, False, Action.HIDE),
        (Policy.HIDE_REMOVE, CO, H, True, Action.REMOVE),
        (Policy.HIDE_REMOVE, DC, H, True, Action.RESTORE),
    ],
)
def test_decision_table(policy: Policy, status: str, done: Done, due: bool, action: Action) -> None:
    final_at = None if status == IP else 1000.0
    now = 1000.0 + (60.0 if due else 59.0)
    assert decide(policy, status, done, final_at, now, remove_delay=60.0) is action


@pytest.mark.parametrize(
    "done", [Done.KEPT, Done.RESTORED, Done.REMOVED, Done.UNMATCHED, Done.LEFT]
)
def test_terminal_states_are_not_looked_at_again(done: Done) -> None:
    for status in (IP, CO, DC):
        assert decide(Policy.HIDE_REMOVE, status, done, 0.0, 1e9, 0.0) is Action.NONE


STUDY = "1.2.3"


def cand(
    name: str, study: str = STUDY, sps: tuple[str, ...] = ("S1",), acc: str = "A1"
) -> Candidate:
    return Candidate(name, study, sps, acc)


def test_select_by_study_and_sps_id() -> None:
    chosen = select(
        [cand("a.wl"), cand("b.wl", sps=("S2",)), cand("c.wl", study="9.9")],
        rules.Link(STUDY, "S1", "A1"),
    )
    assert chosen.names == ("a.wl",)


def test_select_by_accession_when_no_sps_id() -> None:
    link = rules.Link(STUDY, "", "A1")
    assert select([cand("a.wl"), cand("b.wl", acc="A2")], link).names == ("a.wl",)
    assert not select([cand("a.wl", study="9.9")], link).found, "another study's accession"


def test_a_served_and_a_hidden_copy_are_one_entry() -> None:
    chosen = select([cand("a.wl"), cand("a.wl.inprogress")], rules.Link(STUDY, "S1", ""))
    assert chosen.names == ("a.wl", "a.wl.inprogress")


@pytest.mark.parametrize(
    ("candidates", "link", "reason"),
    [
        ([], rules.Link(STUDY, "S1", ""), "no entry with this study and SPS ID"),
        (
            [cand("a.wl"), cand("b.wl")],
            rules.Link(STUDY, "S1", ""),
            "2 entries with this study and SPS ID: a.wl, b.wl",
        ),
        (
            [cand("a.wl", sps=("X",)), cand("b.wl", sps=("Y",))],
            rules.Link(STUDY, "", "A1"),
            "2 entries with this accession number: a.wl, b.wl",
        ),
        ([cand("a.wl")], rules.Link(STUDY, "", ""), "neither an SPS ID nor an accession"),
    ],
)
def test_no_guess(candidates: list[Candidate], link: rules.Link, reason: str) -> None:
    chosen = select(candidates, link)
    assert not chosen.found and reason in chosen.reason


def test_an_entry_without_study_uid_needs_sps_id_and_accession() -> None:
    """The modality generated the Study Instance UID: SPS ID alone is not enough."""
    link = rules.Link("2.25.999", "S1", "A1")
    assert select([cand("a.wl", study="")], link).names == ("a.wl",)
    assert not select([cand("a.wl", study="", acc="A2")], link).found
    assert not select([cand("a.wl", study="")], rules.Link("2.25.999", "S1", "")).found
