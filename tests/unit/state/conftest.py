"""Every store test runs on both backends: SQLite in a temporary directory, and a
real PostgreSQL server (a throwaway cluster for the session, a database per test)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.postgres import Cluster
from tests.helpers.ups import Clock, backend_for
from wlmd.state.repository import Policy, UpsRepository


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh state database lives: an SQLite path or a PostgreSQL conninfo."""
    if request.param == "sqlite":
        return str(tmp_path / "state" / "wlmd.db")
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    return cluster.database()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_repo(location: str, clock: Clock) -> Iterator[Callable[..., UpsRepository]]:
    made: list[UpsRepository] = []

    def build(policy: Policy | None = None) -> UpsRepository:
        repo = UpsRepository(backend_for(location), clock=clock, policy=policy)
        made.append(repo)
        return repo

    yield build
    for repo in made:
        repo.close()


@pytest.fixture
def repo(make_repo: Callable[..., UpsRepository]) -> UpsRepository:
    return make_repo()
