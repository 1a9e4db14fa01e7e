"""A small, fast Modality Worklist C-FIND client speaking the DICOM upper layer itself.

One presentation context (Modality Worklist Information Model - FIND, implicit VR
little endian), requests prepared as bytes, responses parsed just enough to count
them, read their statuses and (when asked) keep the identifiers. Every socket
operation has a timeout and every C-FIND a wall-clock deadline, so a server that
stops answering costs at most that long. Extends bench/assoc.py's C-ECHO client.

    with Association.open("127.0.0.1", port, "WLMD") as assoc:
        result = assoc.find(identifier({"PatientID": "P1"}))
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from dataclasses import dataclass, field

MWL_FIND = b"1.2.840.10008.5.1.4.31"
IMPLICIT_LE = b"1.2.840.10008.1.2"
APPLICATION_CONTEXT = b"1.2.840.10008.3.1.1.1"
IMPLEMENTATION_UID = b"1.2.826.0.1.3680043.9.7433.99.2"
IMPLEMENTATION_VERSION = b"WLMD_BENCH"

PENDING = (0xFF00, 0xFF01)


class DicomError(Exception):
    """The association or the C-FIND failed (the message says how)."""


class Rejected(DicomError):
    """A-ASSOCIATE-RJ: the server refused the association."""


class Timeout(DicomError):
    """A socket operation or the whole C-FIND took longer than allowed."""


# --------------------------------------------------------------------------- encoding


def _item(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(body)) + body


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBL", kind, 0, len(body)) + body


def associate_rq(called: str, calling: str, max_pdu: int) -> bytes:
    """A-ASSOCIATE-RQ (PS3.8 9.3.2): MWL FIND with implicit VR little endian, context 1."""
    context = _item(0x20, bytes([1, 0, 0, 0]) + _item(0x30, MWL_FIND) + _item(0x40, IMPLICIT_LE))
    user = _item(
        0x50,
        _item(0x51, struct.pack(">L", max_pdu))
        + _item(0x52, IMPLEMENTATION_UID)
        + _item(0x55, IMPLEMENTATION_VERSION),
    )
    body = (
        struct.pack(">HH", 1, 0)
        + called.encode("ascii").ljust(16)
        + calling.encode("ascii").ljust(16)
        + bytes(32)
        + _item(0x10, APPLICATION_CONTEXT)
        + context
        + user
    )
    return _pdu(0x01, body)


def _element(tag: int, value: bytes, pad: bytes = b" ") -> bytes:
    if len(value) % 2:
        value += pad
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def find_rq(message_id: int, ident: bytes, fragment: int = 16000) -> bytes:
    """P-DATA-TF PDUs: the C-FIND-RQ command, then the identifier (PS3.7 9.3.2.1)
    in fragments of at most ``fragment`` bytes (every SCP accepts 16 KiB PDUs)."""
    elements = (
        _element(0x00000002, MWL_FIND, b"\0")
        + _element(0x00000100, struct.pack("<H", 0x0020))
        + _element(0x00000110, struct.pack("<H", message_id))
        + _element(0x00000700, struct.pack("<H", 0))
        + _element(0x00000800, struct.pack("<H", 0x0000))
    )
    command = _element(0x00000000, struct.pack("<L", len(elements))) + elements
    pdus = [_pdu(0x04, struct.pack(">LBB", len(command) + 2, 1, 0x03) + command)]
    for start in range(0, max(len(ident), 1), fragment):
        piece = ident[start : start + fragment]
        last = 0x02 if start + fragment >= len(ident) else 0x00
        pdus.append(_pdu(0x04, struct.pack(">LBB", len(piece) + 2, 1, last) + piece))
    return b"".join(pdus)


RELEASE_RQ = _pdu(0x05, bytes(4))

#: Tags of the keywords the identifiers use (no pydicom needed in client processes).
TAGS = {
    "AccessionNumber": 0x00080050,
    "Modality": 0x00080060,
    "ReferringPhysicianName": 0x00080090,
    "PatientName": 0x00100010,
    "PatientID": 0x00100020,
    "PatientBirthDate": 0x00100030,
    "PatientSex": 0x00100040,
    "StudyInstanceUID": 0x0020000D,
    "RequestingPhysician": 0x00321032,
    "RequestedProcedureDescription": 0x00321060,
    "ScheduledStationAETitle": 0x00400001,
    "ScheduledProcedureStepStartDate": 0x00400002,
    "ScheduledProcedureStepStartTime": 0x00400003,
    "ScheduledPerformingPhysicianName": 0x00400006,
    "ScheduledProcedureStepDescription": 0x00400007,
    "ScheduledProcedureStepID": 0x00400009,
    "ScheduledStationName": 0x00400010,
    "ScheduledProcedureStepLocation": 0x00400011,
    "ScheduledProcedureStepSequence": 0x00400100,
    "RequestedProcedureID": 0x00401001,
    "RequestedProcedurePriority": 0x00401003,
}
#: What a modality typically asks for: matching keys get a value, the rest are return keys.
TOP_KEYS = (
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "RequestingPhysician",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "RequestedProcedurePriority",
)
SPS_KEYS = (
    "Modality",
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
    "ScheduledStationName",
    "ScheduledProcedureStepLocation",
)


def identifier(matching: dict[str, str]) -> bytes:
    """An implicit VR little endian identifier: ``matching`` values, other keys empty.

    Values are ASCII (a request's Specific Character Set is ignored by wlmscpfs).
    """
    unknown = set(matching) - set(TOP_KEYS) - set(SPS_KEYS)
    if unknown:
        raise ValueError(f"not a key of this client: {sorted(unknown)}")

    def level(keys: tuple[str, ...]) -> list[tuple[int, bytes]]:
        return [(TAGS[k], _element(TAGS[k], matching.get(k, "").encode("ascii"))) for k in keys]

    item_body = b"".join(data for _, data in sorted(level(SPS_KEYS)))
    item = struct.pack("<HHL", 0xFFFE, 0xE000, len(item_body)) + item_body
    sps_tag = TAGS["ScheduledProcedureStepSequence"]
    elements = [*level(TOP_KEYS), (sps_tag, _element(sps_tag, item))]
    return b"".join(data for _, data in sorted(elements))


# --------------------------------------------------------------------------- decoding


def _command_fields(command: bytes) -> dict[int, int]:
    """US/UL values of a command set (implicit VR LE); other elements are skipped."""
    fields: dict[int, int] = {}
    pos = 0
    while pos + 8 <= len(command):
        group, elem, length = struct.unpack_from("<HHL", command, pos)
        if length == 2:
            fields[(group << 16) | elem] = struct.unpack_from("<H", command, pos + 8)[0]
        pos += 8 + length
    return fields


def _skip_undefined(data: bytes, pos: int) -> int:
    """Position after the delimiter closing an undefined-length value starting at ``pos``."""
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHL", data, pos)
        pos += 8
        if group == 0xFFFE and elem in (0xE0DD, 0xE00D):
            return pos
        if length == 0xFFFFFFFF:
            pos = _skip_undefined(data, pos)
        else:
            pos += length
    return pos


def top_level_value(data: bytes, tag: int) -> bytes | None:
    """The value of top-level element ``tag`` in an implicit VR LE data set, if present."""
    pos = 0
    want = (tag >> 16, tag & 0xFFFF)
    while pos + 8 <= len(data):
        group, elem, length = struct.unpack_from("<HHL", data, pos)
        pos += 8
        if (group, elem) == want:
            return data[pos : pos + length]
        pos = _skip_undefined(data, pos) if length == 0xFFFFFFFF else pos + length
    return None


def patient_ids(datasets: list[bytes]) -> list[str]:
    """Sorted Patient IDs of response identifiers (the cross-check between servers)."""
    out = []
    for data in datasets:
        value = top_level_value(data, TAGS["PatientID"])
        out.append("" if value is None else value.decode("latin-1").rstrip(" \0"))
    return sorted(out)


# --------------------------------------------------------------------------- client


@dataclass
class FindResult:
    matches: int
    status: int  # the final status
    latency: float  # seconds: request sent until the final response
    pending_statuses: set[int] = field(default_factory=set)
    datasets: list[bytes] = field(default_factory=list)


class Association:
    """One association to an MWL SCP over a plain socket."""

    def __init__(self, sock: socket.socket, io_timeout: float) -> None:
        self.sock = sock
        self.io_timeout = io_timeout
        self.buf = bytearray()
        self.message_id = 0
        self.setup = 0.0  # seconds: connect until A-ASSOCIATE-AC

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        called: str,
        calling: str = "BENCH",
        *,
        io_timeout: float = 60.0,
        max_pdu: int = 16384,
        rq: bytes | None = None,
    ) -> Association:
        started = time.perf_counter()
        try:
            sock = socket.create_connection((host, port), timeout=io_timeout)
        except TimeoutError as exc:
            raise Timeout(f"connect to {host}:{port} timed out after {io_timeout}s") from exc
        except OSError as exc:
            raise DicomError(f"connect to {host}:{port}: {exc}") from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assoc = cls(sock, io_timeout)
        try:
            sock.sendall(rq or associate_rq(called, calling, max_pdu))
            kind, body = assoc._recv_pdu()
            if kind == 0x03:
                result, source, reason = body[1], body[2], body[3]
                raise Rejected(f"association rejected (result {result}, source {source}, "
                               f"reason {reason})")  # fmt: skip
            if kind != 0x02:
                raise DicomError(f"expected A-ASSOCIATE-AC, got PDU type 0x{kind:02X}")
            assoc._check_context(body)
        except BaseException:
            assoc.close()
            raise
        assoc.setup = time.perf_counter() - started
        return assoc

    def _check_context(self, body: bytes) -> None:
        pos = 68
        while pos + 4 <= len(body):
            kind, _, length = struct.unpack_from(">BBH", body, pos)
            if kind == 0x21:
                if body[pos + 6] != 0:
                    raise DicomError(f"presentation context rejected (result {body[pos + 6]})")
                return
            pos += 4 + length
        raise DicomError("no presentation context in the A-ASSOCIATE-AC")

    # -- reading

    def _fill(self, need: int, deadline: float | None) -> None:
        while len(self.buf) < need:
            timeout = self.io_timeout
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise Timeout("C-FIND not answered before its deadline")
            self.sock.settimeout(timeout)
            try:
                chunk = self.sock.recv(max(262144, need - len(self.buf)))
            except TimeoutError as exc:
                raise Timeout(f"no data from the server for {timeout:.1f}s") from exc
            except OSError as exc:
                raise DicomError(f"connection error: {exc}") from exc
            if not chunk:
                raise DicomError("connection closed by the server")
            self.buf += chunk

    def _recv_pdu(self, deadline: float | None = None) -> tuple[int, bytes]:
        self._fill(6, deadline)
        kind, _, length = struct.unpack_from(">BBL", self.buf)
        self._fill(6 + length, deadline)
        body = bytes(self.buf[6 : 6 + length])
        del self.buf[: 6 + length]
        return kind, body

    # -- services

    def find(
        self, ident: bytes, *, keep: bool = False, deadline_s: float | None = None
    ) -> FindResult:
        """One C-FIND; ``keep`` keeps the response identifiers (raw implicit VR LE)."""
        self.message_id = (self.message_id % 65535) + 1
        request = find_rq(self.message_id, ident)
        started = time.perf_counter()
        deadline = None if deadline_s is None else time.monotonic() + deadline_s
        try:
            self.sock.settimeout(self.io_timeout)
            self.sock.sendall(request)
        except TimeoutError as exc:
            raise Timeout("sending the C-FIND-RQ timed out") from exc
        except OSError as exc:
            raise DicomError(f"connection error: {exc}") from exc
        matches = 0
        pending: set[int] = set()
        datasets: list[bytes] = []
        command = b""
        data = b""
        expect_data = False
        final: int | None = None  # a final status whose identifier is still to come
        while True:
            kind, body = self._recv_pdu(deadline)
            if kind == 0x07:
                raise DicomError("A-ABORT from the server during the C-FIND")
            if kind != 0x04:
                raise DicomError(f"unexpected PDU type 0x{kind:02X} during the C-FIND")
            pos = 0
            while pos + 6 <= len(body):
                length = struct.unpack_from(">L", body, pos)[0]
                control = body[pos + 5]
                fragment = body[pos + 6 : pos + 4 + length]
                pos += 4 + length
                if control & 0x01:  # command
                    command += fragment
                    if not control & 0x02:
                        continue
                    fields = _command_fields(command)
                    command = b""
                    status = fields.get(0x00000900)
                    if status is None:
                        raise DicomError("C-FIND-RSP without Status")
                    has_data = fields.get(0x00000800, 0x0101) != 0x0101
                    if status in PENDING:
                        matches += 1
                        pending.add(status)
                        expect_data = has_data
                        continue
                    if has_data:  # a final response with an identifier: read and ignore it
                        expect_data = True
                        final = status
                        continue
                    return FindResult(
                        matches, status, time.perf_counter() - started, pending, datasets
                    )
                else:
                    data += fragment
                    if control & 0x02:
                        if keep and expect_data:
                            datasets.append(data)
                        data = b""
                        expect_data = False
                        if final is not None:
                            return FindResult(
                                matches, final, time.perf_counter() - started, pending, datasets
                            )

    def release(self) -> None:
        try:
            self.sock.settimeout(self.io_timeout)
            self.sock.sendall(RELEASE_RQ)
            kind, _ = self._recv_pdu()
        except TimeoutError as exc:
            raise Timeout("A-RELEASE timed out") from exc
        except OSError as exc:
            raise DicomError(f"connection error during release: {exc}") from exc
        finally:
            self.close()
        if kind != 0x06:
            raise DicomError(f"expected A-RELEASE-RP, got PDU type 0x{kind:02X}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def __enter__(self) -> Association:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
