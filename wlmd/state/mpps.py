"""Modality Performed Procedure Steps in the state store: one transaction per N-CREATE / N-SET.

The rules are :mod:`wlmd.mpps.rules`; here they are applied under the row's
write lock (SQLite ``BEGIN IMMEDIATE``, PostgreSQL ``SELECT … FOR UPDATE``),
so two N-SETs of one step (two nodes, or a modality that retries) are
serialised and the second sees the first's status. The scheduled step an
MPPS performs (Study Instance UID + SPS ID, accession number) is kept in
columns, for the worklist policy and for lookups. Nothing here logs patient
data.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from wlmd.mpps import policy, rules
from wlmd.state import codec, schema
from wlmd.state.backends import Backend


@dataclass(frozen=True)
class MppsResult:
    """An operation's DIMSE status, offending tags, Error ID, reason, and the step."""

    status: int
    uid: str = ""
    dataset: Dataset | None = None
    offending: tuple[int, ...] = ()
    reason: str = ""
    error_id: int | None = None
    #: N-SET attributes that may not be set and were ignored (for the log)
    ignored: tuple[int, ...] = ()
    link: rules.Link | None = None

    @property
    def failed(self) -> bool:
        return self.status != rules.SUCCESS


@dataclass(frozen=True)
class StoredMpps:
    uid: str
    status: str
    station_ae: str
    link: rules.Link
    final_at: float | None


@dataclass(frozen=True)
class EntryWork:
    """One step as the worklist entry policy sees it (:meth:`MppsRepository.open_entries`)."""

    uid: str
    status: str
    link: rules.Link
    final_at: float | None
    done: policy.Done
    #: the entry's served name once the policy found it (a crash after the file change
    #: and before :meth:`MppsRepository.record_entry` is told by the file's state)
    entry_name: str


class MppsRepository:
    """Create and set MPPS instances (PS3.4 F.7.2)."""

    def __init__(self, backend: Backend, *, clock: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.clock = clock
        backend.on_connect(schema.ensure_schema)

    def close(self) -> None:
        self.backend.close()

    def create(self, uid: str | None, ds: Dataset) -> MppsResult:
        """N-CREATE: a new IN PROGRESS step; the SCP assigns a UID when the request has none."""
        uid = uid or generate_uid(prefix=None)
        check = rules.check_create(ds)
        if check.failed or check.dataset is None:
            return MppsResult(check.status, uid, offending=check.offending, reason=check.reason)
        found = rules.link(ds)
        # The SOP Common module's UIDs, kept with the step and returned with the
        # N-CREATE response: the one place a modality sees a UID the SCP assigned.
        ds.SOPClassUID = rules.SOP_CLASS
        ds.SOPInstanceUID = uid
        now = self.clock()
        try:
            with self.backend.transaction() as tx:
                if tx.execute("SELECT 1 FROM mpps WHERE uid = ?", (uid,)):
                    return MppsResult(rules.DUPLICATE_SOP_INSTANCE, uid, reason="duplicate")
                tx.execute(
                    "INSERT INTO mpps (uid, status, station_ae, study_uid, sps_id, accession,"
                    " dataset, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        uid,
                        rules.IN_PROGRESS,
                        rules.text_value(ds, rules.STATION_AE),
                        found.study_instance_uid,
                        found.sps_id,
                        found.accession_number,
                        codec.encode(ds),
                        now,
                        now,
                    ),
                )
        except Exception as exc:
            if self.backend.is_unique_violation(exc):  # created meanwhile on another node
                return MppsResult(rules.DUPLICATE_SOP_INSTANCE, uid, reason="duplicate")
            raise
        return MppsResult(rules.SUCCESS, uid, ds, link=found)

    def set(self, uid: str, modification: Dataset) -> MppsResult:
        """N-SET: applied while IN PROGRESS, ending in COMPLETED or DISCONTINUED at most once."""
        with self.backend.transaction() as tx:
            sql = "SELECT dataset FROM mpps WHERE uid = ?"
            if tx.dialect == "postgresql":
                sql += " FOR UPDATE"
            rows = tx.execute(sql, (uid,))
            if not rows:
                return MppsResult(rules.NO_SUCH_SOP_INSTANCE, uid, reason="no such MPPS")
            stored = codec.decode(rows[0][0])
            check = rules.check_set(stored, modification)
            if check.failed or check.dataset is None:
                return MppsResult(
                    check.status,
                    uid,
                    offending=check.offending,
                    reason=check.reason,
                    error_id=check.error_id,
                )
            merged = check.dataset
            status = rules.text_value(merged, rules.STATUS)
            now = self.clock()
            final = now if status in rules.FINAL else None
            tx.execute(
                "UPDATE mpps SET status = ?, dataset = ?, updated_at = ?, final_at = ?"
                " WHERE uid = ?",
                (status, codec.encode(merged), now, final, uid),
            )
        return MppsResult(
            rules.SUCCESS, uid, merged, ignored=check.ignored, link=rules.link(merged)
        )

    def get(self, uid: str) -> StoredMpps | None:
        with self.backend.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT uid, status, station_ae, study_uid, sps_id, accession, final_at"
                " FROM mpps WHERE uid = ?",
                (uid,),
            )
        if not rows:
            return None
        uid_, status, station, study, sps, accession, final_at = rows[0]
        return StoredMpps(uid_, status, station, rules.Link(study, sps, accession), final_at)

    def open_entries(self) -> list[EntryWork]:
        """The steps whose worklist entry the policy may still act on (oldest first)."""
        states = tuple(d.value for d in policy.OPEN)
        with self.backend.transaction(write=False) as tx:
            rows = tx.execute(
                "SELECT uid, status, study_uid, sps_id, accession, final_at, entry_state,"
                " entry_name FROM mpps WHERE entry_state IN (?, ?) ORDER BY created_at, uid",
                states,
            )
        return [
            EntryWork(
                uid,
                status,
                rules.Link(study, sps, accession),
                final_at,
                policy.Done(state),
                name,
            )
            for uid, status, study, sps, accession, final_at, state, name in rows
        ]

    def record_entry(self, uid: str, done: policy.Done, name: str) -> None:
        """What was done to the step's entry (after the file change is durable)."""
        with self.backend.transaction() as tx:
            tx.execute(
                "UPDATE mpps SET entry_state = ?, entry_name = ? WHERE uid = ?",
                (done.value, name, uid),
            )

    def purge_final(self, older_than: float) -> int:
        """Delete COMPLETED/DISCONTINUED steps whose final state is older than ``older_than`` s."""
        limit = self.clock() - older_than
        with self.backend.transaction() as tx:
            return tx.rowcount(
                "DELETE FROM mpps WHERE final_at IS NOT NULL AND final_at < ?", (limit,)
            )
