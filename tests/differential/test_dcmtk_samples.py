"""DCMTK's own sample queries (wlistqry*.dump) against its sample database (OFFIS)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.differential.runner import PairPool, differences, failure_message, run_pair
from tests.helpers.dcmtk import dcmtk_examples_dir, dump2dcm

pytestmark = pytest.mark.dcmtk

EXAMPLES = dcmtk_examples_dir()
QUERY_DUMPS = sorted((EXAMPLES / "wlistqry").glob("wlistqry*.dump")) if EXAMPLES else []


def test_dcmtk_sample_queries_are_installed() -> None:
    """Without the samples the parametrised test below would silently vanish."""
    if not QUERY_DUMPS:
        message = "DCMTK example queries (wlistqry*.dump) not installed"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true, so they are required", pytrace=False)
        pytest.skip(message)
    assert len(QUERY_DUMPS) >= 10


@pytest.mark.parametrize("dump", QUERY_DUMPS, ids=[p.stem for p in QUERY_DUMPS])
def test_dcmtk_sample_query(dump: Path, server_pairs: PairPool, tmp_path: Path) -> None:
    pair = server_pairs.get(())
    q = dcmread(dump2dcm(dump, tmp_path / (dump.stem + ".dcm")))
    reference, candidate = run_pair(pair, "find", q, "OFFIS")
    assert reference.final_status is not None, reference.describe()
    problems = differences(reference, candidate)
    assert not problems, failure_message(dump.stem, reference, candidate, problems, pair)
