"""Fixtures shared by every test layer.

The repository root is put on ``sys.path`` so tests import ``tests.helpers…`` and
``wlmd`` from the working tree without installing anything. Every server started
through :mod:`tests.helpers.servers` is registered there; the session teardown (and
an ``atexit`` hook for interrupted runs) kills whatever is still alive, so the suite
never leaves processes behind.
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.helpers import servers  # noqa: E402
from tests.helpers.dcmtk import require_dcmtk  # noqa: E402
from tests.helpers.postgres import Cluster, start_cluster  # noqa: E402

atexit.register(servers.stop_all)


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_servers() -> Iterator[None]:
    yield
    servers.stop_all()


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A throwaway PostgreSQL cluster for the session (skip, or fail with CI=true, if missing)."""
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def dcmtk() -> dict[str, str]:
    """Paths of DCMTK's findscu, echoscu, dump2dcm and wlmscpfs (skip/fail if missing)."""
    return require_dcmtk()


@pytest.fixture(scope="session")
def wlmd_available() -> None:
    """Skip (or, with CI=true, fail) when ``python -m wlmd --help`` does not work yet."""
    import os

    if not servers.wlmd_importable():
        message = "wlmd cannot be started (python -m wlmd --help fails)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
