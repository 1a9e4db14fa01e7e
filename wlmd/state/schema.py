"""The state database's schema and its versioned migrations.

``wlmd_schema`` holds one row, the version. :func:`ensure_schema` runs the
missing migrations in one transaction (PostgreSQL: under an advisory lock,
so two nodes starting together migrate once) and refuses a database whose
version is newer than this wlmd knows: an older wlmd must not write into a
layout it does not understand.

Tables: ``ups`` (the data set's bytes, ``codec``, plus the columns the
store selects and locks on), ``subscription`` (per instance, with its
deletion lock), ``global_subscription`` (global and filtered global, the
filter as a data set), ``outbox`` (one row per event and subscriber: lease, attempts,
next attempt, delivered time); from version 2 ``mpps`` (Modality Performed
Procedure Steps, with the scheduled step they perform); from version 3 the
``mpps`` columns ``entry_state``/``entry_name`` (what ``--mpps-entry-policy``
did to the worklist entry, :mod:`wlmd.mpps.policy`).
"""

from __future__ import annotations

from wlmd.state.backends import Backend, StoreError, Tx

#: Arbitrary key of the PostgreSQL advisory lock taken while migrating.
_MIGRATION_LOCK = 0x776C6D64  # "wlmd"

_TYPES = {
    "sqlite": {"serial": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "blob": "BLOB"},
    "postgresql": {
        "serial": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "blob": "BYTEA",
    },
}

#: MIGRATIONS[n] takes the schema from version n to n + 1.
MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE ups (
            uid TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            transaction_uid TEXT,
            performer_ae TEXT,
            start_dt TEXT NOT NULL,
            worklist_label TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            dataset {blob} NOT NULL,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            final_at {real}
        )""",
        "CREATE INDEX ups_state_start ON ups (state, start_dt)",
        "CREATE INDEX ups_start ON ups (start_dt)",
        "CREATE INDEX ups_label ON ups (worklist_label)",
        "CREATE INDEX ups_patient ON ups (patient_id)",
        "CREATE INDEX ups_final ON ups (final_at)",
        """CREATE TABLE subscription (
            uid TEXT NOT NULL REFERENCES ups (uid) ON DELETE CASCADE,
            ae TEXT NOT NULL,
            deletion_lock INTEGER NOT NULL,
            PRIMARY KEY (uid, ae)
        )""",
        "CREATE INDEX subscription_ae ON subscription (ae)",
        """CREATE TABLE global_subscription (
            ae TEXT PRIMARY KEY,
            deletion_lock INTEGER NOT NULL,
            filter {blob}
        )""",
        """CREATE TABLE outbox (
            id {serial},
            ups_uid TEXT NOT NULL,
            subscriber TEXT NOT NULL,
            event_type INTEGER NOT NULL,
            info {blob} NOT NULL,
            created_at {real} NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at {real} NOT NULL,
            lease_owner TEXT,
            lease_until {real},
            last_error TEXT,
            delivered_at {real}
        )""",
        "CREATE INDEX outbox_due ON outbox (delivered_at, next_attempt_at)",
        "CREATE INDEX outbox_order ON outbox (subscriber, ups_uid, id)",
    ],
    [  # 1 -> 2: Modality Performed Procedure Steps
        """CREATE TABLE mpps (
            uid TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            station_ae TEXT NOT NULL,
            study_uid TEXT NOT NULL,
            sps_id TEXT NOT NULL,
            accession TEXT NOT NULL,
            dataset {blob} NOT NULL,
            created_at {real} NOT NULL,
            updated_at {real} NOT NULL,
            final_at {real}
        )""",
        "CREATE INDEX mpps_study_sps ON mpps (study_uid, sps_id)",
        "CREATE INDEX mpps_accession ON mpps (accession)",
        "CREATE INDEX mpps_final ON mpps (final_at)",
    ],
    [  # 2 -> 3: what the worklist entry policy did to the entry an MPPS performs
        "ALTER TABLE mpps ADD COLUMN entry_state TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE mpps ADD COLUMN entry_name TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX mpps_entry_state ON mpps (entry_state)",
    ],
]
LATEST = len(MIGRATIONS)


def version(tx: Tx) -> int:
    tx.execute("CREATE TABLE IF NOT EXISTS wlmd_schema (version INTEGER NOT NULL)")
    rows = tx.execute("SELECT version FROM wlmd_schema")
    if not rows:
        tx.execute("INSERT INTO wlmd_schema (version) VALUES (0)")
        return 0
    return int(rows[0][0])


def ensure_schema(backend: Backend) -> None:
    """Bring the database to :data:`LATEST`, or refuse one that is newer."""
    with backend.transaction(write=True) as tx:
        if tx.dialect == "postgresql":
            tx.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        found = version(tx)
        if found > LATEST:
            raise StoreError(
                f"the state database has schema version {found}, newer than this wlmd's "
                f"{LATEST}: upgrade wlmd, or point it at another database"
            )
        for step in range(found, LATEST):
            for statement in MIGRATIONS[step]:
                tx.execute(statement.format(**_TYPES[tx.dialect]))
        if found != LATEST:
            tx.execute("UPDATE wlmd_schema SET version = ?", (LATEST,))
