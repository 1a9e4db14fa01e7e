"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol), as a pure incremental decoder.

A message travels as ``<VT> payload <FS><CR>`` (start block 0x0B, end block
0x1C 0x0D; HL7 v2.5.1 Appendix C, "MLLP Release 1"). TCP gives no message
boundaries, so one ``recv()`` may hold half a frame or several: the decoder
takes bytes as they come and yields whole payloads. What it does with the
rest is reported, never silently dropped, so that the listener can log it:

- bytes before a start block (noise, a sender that lost framing) are
  discarded and counted (:class:`Discarded`);
- a start block inside an unfinished frame means that frame was never ended:
  it is reported :class:`Incomplete` and the new one starts;
- a frame still open when the connection closes is :class:`Incomplete`, and
  never applied (a RIS that dies mid-message resends it);
- a frame larger than ``max_size`` is :class:`TooLarge`: the decoder stops
  (the listener answers AR and closes; the rest of the stream cannot be
  trusted to be framed).

No sockets here: :mod:`wlmd.services.hl7intake` feeds it.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"

#: Default bound on one message: well above the 1 MB an order with an embedded
#: report may reach, far below what would hurt the listener's memory.
DEFAULT_MAX_SIZE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole message payload (without the block characters)."""

    payload: bytes


@dataclass(frozen=True, slots=True)
class Discarded:
    """``count`` bytes outside any frame were thrown away."""

    count: int


@dataclass(frozen=True, slots=True)
class Incomplete:
    """A frame of ``size`` bytes so far was never ended (not applied)."""

    size: int


@dataclass(frozen=True, slots=True)
class TooLarge:
    """A frame grew beyond the bound; the decoder accepts nothing more."""

    size: int
    limit: int


Event = Frame | Discarded | Incomplete | TooLarge


def frame(payload: bytes) -> bytes:
    """``payload`` with MLLP's start and end blocks."""
    return START_BLOCK + payload + END_BLOCK


class Decoder:
    """Feed bytes, get :data:`Event` objects; :meth:`close` at end of stream."""

    def __init__(self, max_size: int = DEFAULT_MAX_SIZE) -> None:
        self.max_size = max_size
        self._body = bytearray()
        self._open = False
        self._scanned = 0  # bytes of _body already searched for the end block
        self._junk = 0
        self.failed = False

    @property
    def pending(self) -> int:
        """Bytes of an unfinished frame held (0 between frames)."""
        return len(self._body) if self._open else 0

    def feed(self, data: bytes) -> list[Event]:
        events: list[Event] = []
        if self.failed:
            return events
        view = memoryview(data)
        while view:
            if not self._open:
                start = bytes(view).find(START_BLOCK)
                if start < 0:
                    self._junk += len(view)
                    break
                self._junk += start
                self._flush_junk(events)
                self._open = True
                self._body.clear()
                self._scanned = 0
                view = view[start + 1 :]
                continue
            self._body += view
            view = view[len(view) :]
            events.extend(self._frames())
            if self.failed:
                break
            if not self._open:  # what followed the end block is in _body's remainder
                rest, self._body = bytes(self._body), bytearray()
                view = memoryview(rest)
        return events

    def _frames(self) -> list[Event]:
        """Close the open frame if its end block (or a new start) has arrived."""
        events: list[Event] = []
        body = self._body
        begin = max(0, self._scanned - 1)  # an end block may straddle two reads
        end = body.find(END_BLOCK, begin)
        restart = body.find(START_BLOCK, begin)
        if restart >= 0 and (end < 0 or restart < end):
            events.append(Incomplete(restart))
            del body[: restart + 1]
            self._scanned = 0
            return events + self._frames()
        if end < 0:
            self._scanned = len(body)
            if len(body) > self.max_size:
                self.failed = True
                events.append(TooLarge(len(body), self.max_size))
            return events
        if end > self.max_size:
            self.failed = True
            return [TooLarge(end, self.max_size)]
        events.append(Frame(bytes(body[:end])))
        del body[: end + len(END_BLOCK)]
        self._open = False
        self._scanned = 0
        return events

    def close(self) -> list[Event]:
        """End of stream: what was left unfinished."""
        events: list[Event] = []
        if self.failed:
            return events
        if self._open:
            events.append(Incomplete(len(self._body)))
            self._open = False
            self._body.clear()
        self._flush_junk(events)
        return events

    def _flush_junk(self, events: list[Event]) -> None:
        if self._junk:
            events.append(Discarded(self._junk))
            self._junk = 0
