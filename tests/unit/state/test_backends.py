"""Which backend a location opens, and the durability settings of SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from wlmd.state import DEFAULT_PATH, open_store
from wlmd.state.backends import PostgresBackend, SQLiteBackend, StoreError, open_backend


@pytest.mark.parametrize(
    ("location", "kind"),
    [
        ("/var/lib/wlmd/state/wlmd.db", SQLiteBackend),
        ("relative.db", SQLiteBackend),
        ("postgresql://wlmd@db.example/wlmd", PostgresBackend),
        ("host=/run/postgresql dbname=wlmd", PostgresBackend),
    ],
)
def test_location_picks_the_backend(location: str, kind: type) -> None:
    assert type(open_backend(location)) is kind


def test_default_store_is_sqlite_under_the_state_directory() -> None:
    store = open_store()
    assert isinstance(store.backend, SQLiteBackend)
    assert store.backend.path == DEFAULT_PATH == Path("/var/lib/wlmd/state/wlmd.db")


def test_sqlite_is_wal_with_full_sync_and_makes_its_directory(tmp_path: Path) -> None:
    backend = SQLiteBackend(tmp_path / "new" / "dir" / "wlmd.db", busy_timeout=3.0)
    conn = backend.connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 3000
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    backend.close()


def test_an_unusable_location_is_one_line_for_the_operator(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"state database .*file/wlmd\.db"):
        SQLiteBackend(tmp_path / "file" / "wlmd.db").connection()
