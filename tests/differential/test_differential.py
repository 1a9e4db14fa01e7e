"""wlmscpfs vs wlmd on the same worklist files: every case of ``cases.CASES``."""

from __future__ import annotations

import pytest

from tests.differential.cases import CASES, Case
from tests.differential.runner import PairPool, differences, failure_message, run_pair

pytestmark = pytest.mark.dcmtk


#: wlmd with its indexed snapshot (the default) and without it: same answers required.
VARIANTS = {"index": (), "no-index": ("--no-index",)}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_differential(case: Case, variant: str, server_pairs: PairPool) -> None:
    pair = server_pairs.get(case.options, VARIANTS[variant])
    reference, candidate = run_pair(pair, case.kind, case.query, case.aec, case.aet)

    # sanity: the case exercises what it says (checked on wlmscpfs, the reference)
    if case.count is not None:
        assert len(reference.datasets) == case.count, reference.describe()
    if case.final is not None:
        assert reference.final_status == case.final, reference.describe()
    if case.pending is not None:
        assert reference.pending, reference.describe()
        assert {r.status for r in reference.pending} == {case.pending}, reference.describe()

    if case.differs:
        assert case.check is not None, f"{case.id}: a documented difference needs a check"
        case.check(reference, False)
        case.check(candidate, pair.candidate.name == "wlmd")
        return
    problems = differences(reference, candidate)
    assert not problems, failure_message(case.id, reference, candidate, problems, pair)
