"""Session-scoped pairs of servers (wlmscpfs, wlmd) over one shared worklist database.

A pair is started the first time a case asks for its option set and kept for the
whole session, so the suite starts one pair per distinct option set, not per case.

``WLMD_DIFF_AGAINST=wlmscpfs`` replaces wlmd by a second wlmscpfs: the whole suite
must then pass, which proves the harness itself (clients, parsing, comparison) is
deterministic and has no false positives.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.differential.runner import PairPool
from tests.differential.worklist_db import build_database
from tests.helpers import servers
from tests.helpers.dcmtk import require_dcmtk


@pytest.fixture(scope="session")
def worklist_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_dcmtk()
    return build_database(tmp_path_factory.mktemp("wlroot"))


@pytest.fixture(scope="session")
def server_pairs(
    worklist_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PairPool]:
    if os.environ.get("WLMD_DIFF_AGAINST") != "wlmscpfs" and not servers.wlmd_importable():
        message = "wlmd cannot be started yet (python -m wlmd --help fails)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    pool = PairPool(worklist_root, tmp_path_factory.mktemp("serverlogs"))
    with pool.stack:
        yield pool
