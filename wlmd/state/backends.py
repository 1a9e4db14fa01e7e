"""The two databases under the state store: embedded SQLite and PostgreSQL.

One :class:`Backend` per process and database: it opens its connection on
first use, in the process that uses it. After ``fork()`` the child sees a
different pid and opens its own; the inherited connection object is kept
referenced and never used or closed (closing it would, for PostgreSQL, send
a Terminate on the parent's socket, and SQLite forbids using a connection
across fork). ``transaction()`` is one database transaction per DICOM
operation; the SQL is written once with ``?`` placeholders.

SQLite: WAL journal, ``synchronous=FULL`` (each commit is fsynced before
the operation is answered: with NORMAL a commit survives a crash of the
process but not a power loss, and an acknowledged operation must survive
both), ``busy_timeout`` so that writers queue instead of failing, and
``BEGIN IMMEDIATE`` for writing transactions so that they take the write
lock before reading what they will change (two claimers serialise there).

PostgreSQL (psycopg 3): autocommit connection with explicit transactions at
READ COMMITTED; writers lock the step's row with ``SELECT … FOR UPDATE``,
and the outbox is claimed with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

Tracer = Callable[[str], None]


class StoreError(OSError):
    """The state database cannot be used (one line for the operator).

    An OSError, as a missing directory or a refused connection is: start-up
    reports it as ``cannot start: ...`` like the other environment errors.
    """


class Tx(Protocol):
    """One open transaction: run SQL with ``?`` placeholders."""

    dialect: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int: ...


class _Tx:
    def __init__(self, cursor: Any, dialect: str, tracer: Tracer | None) -> None:
        self._cursor = cursor
        self.dialect = dialect
        self._tracer = tracer

    def _run(self, sql: str, params: Sequence[Any]) -> Any:
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        if self._tracer is not None:
            self._tracer(sql)
        self._cursor.execute(sql, tuple(params))
        return self._cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = self._run(sql, params)
        if cursor.description is None:
            return []
        return [tuple(row) for row in cursor.fetchall()]

    def rowcount(self, sql: str, params: Sequence[Any] = ()) -> int:
        return int(self._run(sql, params).rowcount)


class Backend:
    """A lazily opened, per-process connection and its transactions."""

    dialect = ""

    def __init__(self, tracer: Tracer | None = None) -> None:
        self.tracer = tracer
        self._conn: Any = None
        self._pid = 0
        self._inherited: list[Any] = []
        self._ready: Callable[[Backend], None] | None = None

    def on_connect(self, hook: Callable[[Backend], None]) -> None:
        """Run ``hook`` once per process after connecting (the schema check)."""
        self._ready = hook

    def connection(self) -> Any:
        if self._conn is not None and self._pid != os.getpid():
            self._inherited.append(self._conn)  # another process's: never touch it
            self._conn = None
        if self._conn is None:
            self._conn = self._open()
            self._pid = os.getpid()
            if self._ready is not None:
                try:
                    self._ready(self)
                except BaseException:
                    self._drop()
                    raise
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):  # a broken connection: nothing more to do
                conn.close()

    def close(self) -> None:
        """Close this process's connection (not an inherited one)."""
        if self._pid == os.getpid():
            self._drop()
        self._conn = None

    def _open(self) -> Any:
        raise NotImplementedError

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        raise NotImplementedError
        yield  # pragma: no cover

    def is_unique_violation(self, exc: BaseException) -> bool:
        raise NotImplementedError


class SQLiteBackend(Backend):
    """An embedded database file (default under the service's state directory)."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, busy_timeout: float = 10.0, tracer: Tracer | None = None):
        super().__init__(tracer)
        self.path = Path(path)
        self.busy_timeout = busy_timeout

    def _open(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc
        if str(mode).lower() != "wal":
            conn.close()
            raise StoreError(f"state database {self.path}: cannot use WAL (journal mode {mode})")
        return conn

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        conn = self.connection()
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _Tx(cursor, self.dialect, self.tracer)
        except BaseException:
            conn.rollback()
            raise
        else:
            cursor.execute("COMMIT")
        finally:
            cursor.close()

    def is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)


class PostgresBackend(Backend):
    """A PostgreSQL database shared by several wlmd nodes (psycopg 3)."""

    dialect = "postgresql"

    def __init__(self, conninfo: str, connect_timeout: float = 10.0, tracer: Tracer | None = None):
        super().__init__(tracer)
        self.conninfo = conninfo
        self.connect_timeout = connect_timeout

    def _open(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:
            raise StoreError(
                "a PostgreSQL state database needs psycopg 3 "
                "(Debian: python3-psycopg; pip: wlmd[postgresql])"
            ) from exc
        try:
            return psycopg.connect(
                self.conninfo, autocommit=True, connect_timeout=max(1, int(self.connect_timeout))
            )
        except psycopg.Error as exc:
            raise StoreError(f"state database: {str(exc).strip()}") from exc

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Tx]:
        import psycopg

        conn = self.connection()
        try:
            with conn.transaction(), conn.cursor() as cursor:
                yield _Tx(cursor, self.dialect, self.tracer)
        except psycopg.OperationalError:
            self._drop()  # the server went away: the next operation reconnects
            raise

    def is_unique_violation(self, exc: BaseException) -> bool:
        import psycopg.errors

        return isinstance(exc, psycopg.errors.UniqueViolation)


def open_backend(location: str | Path, tracer: Tracer | None = None) -> Backend:
    """A backend for a database location: a ``postgresql://`` URL (or a libpq
    ``key=value`` string), else the path of an SQLite file."""
    text = str(location)
    if text.startswith(("postgresql://", "postgres://")) or "dbname=" in text:
        return PostgresBackend(text, tracer=tracer)
    return SQLiteBackend(text, tracer=tracer)
