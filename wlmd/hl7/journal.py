"""The remembered ACKs, kept across restarts: one small append-only file in the storage area.

Why a file at all: the order identity makes a repeated NW or XO replace the
entry and a repeated cancel find nothing, but it cannot tell an *old*
message from a new one. A RIS resends a message whose ACK it never got (the
connection dropped, wlmd restarted); if wlmd had applied it and a later
message changed or cancelled the order, applying the resend again would
undo that later message — a cancelled order back on the modality's
worklist. Only a memory of the control IDs applied can say "seen: here is
the same ACK" (HL7 v2.5.1 2.10.3: the receiver keeps the control IDs of the
messages it has accepted, to detect duplicates). The area's content has no
trace of a removed order, so that memory is kept here, next to the entries
it describes.

The file is ``<area>/.hl7-acks`` (hidden and not ending in ``.wl``: neither
wlmd nor wlmscpfs reads it as an entry, wlmsetup.txt), one JSON object a
line: sender (MSH-3, MSH-4), control ID (MSH-10), the ACK as sent, what the
log line says — never patient data (ACKs carry only MSH, MSA and ERR, whose
texts name fields, not values). Each line is appended and flushed to disk
after the message was applied and before the ACK goes out: a crash between
the two at worst applies a message twice, as before. The file is read once
at start; a torn last line (power cut while appending) is skipped and
logged. When it holds twice :data:`wlmd.hl7.intake.REMEMBERED` lines it is
rewritten with the newest half (temporary name, fsync, rename).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

LOG = logging.getLogger("wlmd.hl7")
FILE_NAME = ".hl7-acks"

Key = tuple[str, str, str]  # MSH-3, MSH-4, MSH-10


@dataclass(frozen=True, slots=True)
class Remembered:
    """What is kept of one message: enough to answer its repeat the same way."""

    ack: bytes
    message_type: str
    order_control: str
    code: str
    reason: str


class Journal:
    """Appends :class:`Remembered` records to ``path``; :meth:`load` reads them back."""

    def __init__(self, path: str, keep: int) -> None:
        self.path = path
        self.keep = keep
        self._lines = 0

    @classmethod
    def in_area(cls, area_path: str, keep: int) -> Journal:
        return cls(os.path.join(area_path, FILE_NAME), keep)

    def load(self) -> Iterator[tuple[Key, Remembered]]:
        """The records in the order written (older first); nothing when there is no file."""
        try:
            with open(self.path, "rb") as f:
                lines = f.read().split(b"\n")
        except FileNotFoundError:
            return
        except OSError as exc:
            LOG.warning("HL7 remembered ACKs %s not read: %s", self.path, exc.strerror)
            return
        skipped = 0
        for line in lines:
            if not line.strip():
                continue
            try:
                key, record = _decode(line)
            except (ValueError, KeyError, TypeError):
                skipped += 1
                continue
            self._lines += 1
            yield key, record
        if skipped:
            LOG.warning("HL7 remembered ACKs %s: %d unreadable line(s) skipped", self.path, skipped)

    def append(self, key: Key, record: Remembered) -> None:
        """Add one record, durably; a failure is logged, never raised (the ACK still goes)."""
        line = _encode(key, record)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            LOG.warning(
                "HL7 remembered ACKs %s: not written (%s); a resend after a restart "
                "would be applied again",
                self.path,
                exc.strerror,
            )
            return
        self._lines += 1

    @property
    def due(self) -> bool:
        """True when the file has grown to twice :attr:`keep` lines: time to :meth:`compact`."""
        return self._lines >= 2 * self.keep

    def compact(self, newest: list[tuple[Key, Remembered]]) -> None:
        """Rewrite the file with the last :attr:`keep` of ``newest`` only."""
        tmp = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(b"".join(_encode(k, r) for k, r in newest[-self.keep :]))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            LOG.warning("HL7 remembered ACKs %s not compacted: %s", self.path, exc.strerror)
            return
        self._lines = min(len(newest), self.keep)


def _encode(key: Key, record: Remembered) -> bytes:
    fields = {
        "sender": key[0],
        "facility": key[1],
        "control_id": key[2],
        "ack": record.ack.decode("latin-1"),
        "type": record.message_type,
        "order_control": record.order_control,
        "code": record.code,
        "reason": record.reason,
    }
    return json.dumps(fields, ensure_ascii=True, separators=(",", ":")).encode("ascii") + b"\n"


def _decode(line: bytes) -> tuple[Key, Remembered]:
    fields = json.loads(line)
    key = (str(fields["sender"]), str(fields["facility"]), str(fields["control_id"]))
    record = Remembered(
        str(fields["ack"]).encode("latin-1"),
        str(fields["type"]),
        str(fields["order_control"]),
        str(fields["code"]),
        str(fields["reason"]),
    )
    return key, record
