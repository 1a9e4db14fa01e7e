"""One HL7 message in, one ACK out: parse, map, apply through the authoring module.

Idempotency: the ACK of every message that was accepted or refused for its
content is kept by sender (MSH-3, MSH-4) and control ID (MSH-10), the last
:data:`REMEMBERED` of them; the same control ID again gets the same ACK and
nothing is applied twice (a RIS resends when an ACK was lost). A refusal that
may pass later (the area's lock held too long, the area unwritable) is not
remembered. The remembered ACKs are also written to a
:class:`~wlmd.hl7.journal.Journal` in the area and read back at start, so a
resend after a restart cannot undo a later XO or bring back a cancelled
order. Beyond that memory, the order identity does what it can: a repeated
NW or XO replaces the entry, a repeated cancel finds nothing and is accepted.

No sockets here; :mod:`wlmd.services.hl7intake` calls :meth:`Intake.handle`.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from wlmd.authoring import compose
from wlmd.authoring.editor import AreaEditor
from wlmd.authoring.errors import AreaProblem, AuthoringError, LockTimeout, NotFound
from wlmd.hl7 import ack
from wlmd.hl7 import message as m
from wlmd.hl7.journal import Journal, Key, Remembered
from wlmd.hl7.mapping import Rule, combined
from wlmd.hl7.message import Header, Hl7Error, Message, read_header
from wlmd.hl7.orders import orders_of

REMEMBERED = 10000
_NO_HEADER = Header("|", "^~\\&", ("|", "^~\\&"))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the log line says: no patient data."""

    ack: bytes
    message_type: str
    control_id: str
    order_control: str
    code: str  # AA / AE / AR
    reason: str
    repeated: bool
    duration: float


class Intake:
    """Applies messages to one storage area; keeps the remembered ACKs."""

    def __init__(
        self,
        editor: AreaEditor,
        rules: Mapping[str, Rule] | None = None,
        station_defaults: Mapping[str, str] | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.editor = editor
        self.rules = combined(rules)
        self.station_defaults = dict(station_defaults or {})
        self.journal = journal
        self._acks: OrderedDict[Key, Remembered] = OrderedDict()
        for key, record in journal.load() if journal is not None else ():
            self._remember(key, record)

    def handle(self, payload: bytes) -> Outcome:
        started = time.monotonic()
        try:
            header = read_header(payload)
        except Hl7Error as exc:
            text = ack.build(_NO_HEADER, exc.ack_code, exc)
            return Outcome(
                text.encode("ascii", "replace"),
                "?",
                "",
                "",
                exc.ack_code,
                exc.reason,
                False,
                time.monotonic() - started,
            )
        kind = "^".join(p for p in (header.component(9, 1), header.component(9, 2)) if p)
        key = (header.get(3), header.get(4), header.get(10))
        if key[2] and key in self._acks:
            seen = self._acks[key]
            self._acks.move_to_end(key)
            return Outcome(
                seen.ack,
                seen.message_type,
                key[2],
                seen.order_control,
                seen.code,
                seen.reason,
                True,
                time.monotonic() - started,
            )
        codec = "ascii"
        controls = ""
        try:
            msg = Message(payload, header)
            codec = msg.codec
            orders = orders_of(msg, self.rules, self.station_defaults)
            controls = ",".join(dict.fromkeys(o.control for o in orders))
            notes = [self._apply(o.dataset, o.remove, o.group) for o in orders]
            code, error, text = "AA", None, "; ".join(n for n in notes if n)
        except Hl7Error as exc:
            code, error, text = exc.ack_code, exc, exc.reason
        body = ack.build(header, code, error, text if error is None else "").encode(
            codec, "replace"
        )
        reason = f"{error.where}: {error.reason}" if error and error.where else text
        outcome = Outcome(
            body, kind, header.get(10), controls, code, reason, False, time.monotonic() - started
        )
        transient = error is not None and error.code in (
            m.APPLICATION_RECORD_LOCKED,
            m.APPLICATION_INTERNAL_ERROR,
        )
        if key[2] and not transient:
            record = Remembered(body, kind, controls, code, reason)
            self._remember(key, record)
            if self.journal is not None:
                self.journal.append(key, record)
                if self.journal.due:
                    self.journal.compact(list(self._acks.items()))
        return outcome

    def _remember(self, key: Key, record: Remembered) -> None:
        self._acks[key] = record
        self._acks.move_to_end(key)
        while len(self._acks) > REMEMBERED:
            self._acks.popitem(last=False)

    def _apply(self, ds: object, remove: bool, group: int) -> str:
        """Write or remove one entry; a note for MSA-3, Hl7Error when it fails."""
        try:
            if remove:
                name = compose.order_name(ds)  # type: ignore[arg-type]
                assert name is not None, "orders_of checks the identity"
                try:
                    self.editor.remove([name])
                except NotFound:
                    return f"order group {group}: no such order (already removed)"
                return ""
            self.editor.put(ds)  # type: ignore[arg-type]
            return ""
        except LockTimeout as exc:
            raise Hl7Error(
                "AE", m.APPLICATION_RECORD_LOCKED, "", f"{exc.reason}; resend later"
            ) from None
        except AreaProblem as exc:
            raise Hl7Error("AE", m.APPLICATION_INTERNAL_ERROR, "", exc.reason) from None
        except AuthoringError as exc:
            raise Hl7Error(
                "AE",
                m.REQUIRED_FIELD_MISSING,
                "",
                (f"order group {group}: the worklist entry would not be served: {exc.reason}"),
            ) from None
