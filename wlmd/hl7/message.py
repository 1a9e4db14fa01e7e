"""An HL7 v2 message from MLLP bytes: character set, parsing, field access.

The bytes are decoded first, by MSH-18 (HL7 v2.5.1 2.15.9.18, table 0211):
the MSH segment's own fields are ASCII in every set, so MSH-18 can be read
from the raw bytes before anything else. Supported: empty or ``ASCII``
(decoded strictly: a byte above 0x7F is an error, not a guess), ``8859/1``
(Latin-1, DICOM ``ISO_IR 100``) and ``UNICODE UTF-8`` (``ISO_IR 192``). Other
sets (ISO 2022 switching, JIS, ...) are refused with AR naming MSH-18; bytes
invalid for the declared set are refused with AE naming where they are, and
nothing is written.

Segments, fields, repetitions and components are python-hl7's (PyPI
``hl7``, Debian ``python3-hl7``). Escapes (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\,
formatting) are undone per component by python-hl7; ``\\Xhh..\\`` hex is
decoded here as bytes *in the message's character set* (python-hl7 maps each
byte to one code point, which is right for Latin-1 only). python-hl7 logs the
content of fields it cannot unescape at WARNING: its logger is silenced,
patient data stays out of the log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import hl7

# python-hl7 warns with field values (patient data) on odd escapes.
logging.getLogger("hl7").setLevel(logging.CRITICAL + 1)
logging.getLogger("hl7").propagate = False

#: MSH-18 value -> (Python codec, DICOM Specific Character Set or None for the default)
CHARSETS: dict[str, tuple[str, str | None]] = {
    "": ("ascii", None),
    "ASCII": ("ascii", None),
    "8859/1": ("latin-1", "ISO_IR 100"),
    "UNICODE UTF-8": ("utf-8", "ISO_IR 192"),
}

# HL7 table 0357 (message error condition codes) used in ERR-3 / ERR-1.4.
SEGMENT_SEQUENCE_ERROR = 100
REQUIRED_FIELD_MISSING = 101
DATA_TYPE_ERROR = 102
TABLE_VALUE_NOT_FOUND = 103
UNSUPPORTED_MESSAGE_TYPE = 200
UNSUPPORTED_EVENT_CODE = 201
UNSUPPORTED_PROCESSING_ID = 202
UNSUPPORTED_VERSION_ID = 203
UNKNOWN_KEY_IDENTIFIER = 204
DUPLICATE_KEY_IDENTIFIER = 205
APPLICATION_RECORD_LOCKED = 206
APPLICATION_INTERNAL_ERROR = 207

#: Formatting escapes as plain text (HL7 v2.5.1 2.7.3, 2.7.6): highlighting (\H\ \N\)
#: dropped rather than python-hl7's "_", line breaks as a space rather than its CR,
#: which no single-line DICOM value (LO, SH, PN) may hold (PS3.5 6.2).
_PLAIN_TEXT = {"H": "", "N": "", ".br": " ", ".sp": " ", ".ce": " "}

_PATH = re.compile(r"([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?-(\d+)(?:\[(\d+)\])?(?:\.(\d+))?(?:\.(\d+))?")


class Hl7Error(Exception):
    """Why a message is refused: the ACK code, an HL7 error code, where, and why.

    ``where`` is ``SEG-n`` (or ``SEG-n.c``) or "" for the whole message;
    ``reason`` says what a RIS interface engineer should change, without
    patient data (it goes into the log line and ERR).
    """

    def __init__(self, ack_code: str, code: int, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}" if where else reason)
        self.ack_code = ack_code
        self.code = code
        self.where = where
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Header:
    """MSH fields read from the raw bytes (for an ACK even when parsing fails)."""

    field_separator: str
    encoding_characters: str
    fields: tuple[str, ...]  # MSH-1 .. MSH-n as raw text, MSH-1 at index 0

    def get(self, number: int) -> str:
        return self.fields[number - 1] if 0 < number <= len(self.fields) else ""

    def component(self, number: int, component: int) -> str:
        sep = self.encoding_characters[:1] or "^"
        parts = self.get(number).split(sep)
        return parts[component - 1] if component <= len(parts) else ""


def read_header(payload: bytes) -> Header:
    """MSH's fields from the first segment; Hl7Error (AR) when there is no MSH."""
    if not payload.startswith(b"MSH") or len(payload) < 8:
        raise Hl7Error("AR", SEGMENT_SEQUENCE_ERROR, "MSH", "the message does not begin with MSH")
    first = re.split(rb"[\r\n]", payload, maxsplit=1)[0]
    text = first.decode("latin-1")  # MSH's own fields are ASCII in every character set
    separator = text[3]
    if separator.isalnum() or separator in "\r\n ":
        raise Hl7Error("AR", DATA_TYPE_ERROR, "MSH-1", f"bad field separator {separator!r}")
    parts = text[4:].split(separator)
    fields = (separator, *parts)
    encoding = fields[1] if len(fields) > 1 else ""
    if len(encoding) < 4 or len(set(encoding[:4])) < 4 or separator in encoding:
        raise Hl7Error(
            "AR", DATA_TYPE_ERROR, "MSH-2", "encoding characters must be four distinct, as ^~\\&"
        )
    return Header(separator, encoding, fields)


class Message:
    """A parsed message; :meth:`value` reads one component, unescaped, by a path."""

    def __init__(self, payload: bytes, header: Header | None = None) -> None:
        self.header = header or read_header(payload)
        self.codec, self.dicom_charset = charset_of(self.header)
        try:
            text = payload.decode(self.codec)
        except UnicodeDecodeError as exc:
            raise Hl7Error(
                "AE",
                DATA_TYPE_ERROR,
                _segment_at(payload, exc.start),
                (
                    f"byte 0x{payload[exc.start]:02X} at offset {exc.start} is not valid "
                    f"{self.codec.upper()}; declare the character set in MSH-18 "
                    f"(8859/1 or UNICODE UTF-8) or send ASCII"
                ),
            ) from None
        text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\r")
        try:
            self.parsed = hl7.parse(text)
        except Exception as exc:  # python-hl7 raises several types for broken text
            raise Hl7Error(
                "AR", SEGMENT_SEQUENCE_ERROR, "", f"not parseable as HL7 v2 ({type(exc).__name__})"
            ) from None
        self.escape = self.header.encoding_characters[2]
        self._hex = re.compile(re.escape(self.escape) + r"X([0-9A-Fa-f]*)" + re.escape(self.escape))

    @property
    def segment_names(self) -> list[str]:
        return [str(segment[0]) for segment in self.parsed]

    def segments(self, name: str) -> list[hl7.Segment]:
        return [s for s in self.parsed if str(s[0]) == name]

    def has(self, name: str) -> bool:
        return any(str(s[0]) == name for s in self.parsed)

    def value(self, path: str) -> str:
        """``SEG-f``, ``SEG-f.c``, ``SEG-f.c.s``, ``SEG[k]-f[r].c``: k-th segment, r-th
        repetition (1-based; default first); "" when absent."""
        match = _PATH.fullmatch(path)
        if match is None:
            raise ValueError(f"not an HL7 field path: {path!r}")
        name, occurrence, number, repetition, component, sub = match.groups()
        found = self.segments(name)
        k = int(occurrence or 1)
        if k > len(found):
            return ""
        return self.field_value(
            found[k - 1], int(number), int(repetition or 1), int(component or 1), int(sub or 1)
        )

    def field_value(
        self,
        segment: hl7.Segment,
        number: int,
        repetition: int = 1,
        component: int = 1,
        sub: int = 1,
    ) -> str:
        if str(segment[0]) == "MSH" and number <= 2:
            return self.header.get(number)
        if number >= len(segment):
            return ""
        raw = _pick(segment[number], repetition, component, sub)
        return self.unescape(raw)

    def repetitions(self, path: str) -> int:
        """How many repetitions the field ``SEG-f`` of the first such segment has."""
        match = _PATH.fullmatch(path)
        if match is None:
            raise ValueError(f"not an HL7 field path: {path!r}")
        found = self.segments(match.group(1))
        number = int(match.group(3))
        if not found or number >= len(found[0]):
            return 0
        item = found[0][number]
        return (
            len(item) if isinstance(item, hl7.Field) and isinstance(item[0], hl7.Repetition) else 1
        )

    def unescape(self, raw: str) -> str:
        if self.escape not in raw:
            return raw
        out = []
        pos = 0
        for match in self._hex.finditer(raw):
            out.append(self.parsed.unescape(raw[pos : match.start()], _PLAIN_TEXT))
            digits = match.group(1)
            try:
                out.append(bytes.fromhex(digits).decode(self.codec))
            except ValueError:
                raise Hl7Error(
                    "AE",
                    DATA_TYPE_ERROR,
                    "",
                    (f"hex escape \\X{digits}\\ is not valid {self.codec.upper()} bytes"),
                ) from None
            pos = match.end()
        out.append(self.parsed.unescape(raw[pos:], _PLAIN_TEXT))
        return "".join(out)


def charset_of(header: Header) -> tuple[str, str | None]:
    """The Python codec and DICOM Specific Character Set of MSH-18 (its first repetition)."""
    declared = header.get(18)
    repetition = header.encoding_characters[1]
    values = [v.strip() for v in declared.split(repetition)] if declared else [""]
    if len(values) > 1 and any(values[1:]):
        raise Hl7Error(
            "AR",
            TABLE_VALUE_NOT_FOUND,
            "MSH-18",
            (
                f"character set switching ({declared!r}) is not supported; "
                "send one of ASCII, 8859/1, UNICODE UTF-8"
            ),
        )
    try:
        return CHARSETS[values[0].upper()]
    except KeyError:
        raise Hl7Error(
            "AR",
            TABLE_VALUE_NOT_FOUND,
            "MSH-18",
            (f"character set {values[0]!r} is not supported; send ASCII, 8859/1 or UNICODE UTF-8"),
        ) from None


def _pick(item: object, repetition: int, component: int, sub: int) -> str:
    """Dig into python-hl7's containers: Field -> Repetition -> Component -> str."""
    if isinstance(item, str):
        return item if repetition == component == sub == 1 else ""
    assert isinstance(item, list)
    if isinstance(item, hl7.Field) and item and isinstance(item[0], hl7.Repetition):
        if repetition > len(item):
            return ""
        item = item[repetition - 1]
    elif repetition != 1:
        return ""
    for index in (component, sub):
        if isinstance(item, str):
            return item if index == 1 else ""
        assert isinstance(item, list)
        if index > len(item):
            return ""
        item = item[index - 1]
    while isinstance(item, list):  # a sub-component split further than asked
        item = item[0] if item else ""
    return str(item)


def _segment_at(payload: bytes, offset: int) -> str:
    """``SEG-n`` of the byte at ``offset``, for a reason that says where to look."""
    start = max(payload.rfind(b"\r", 0, offset), payload.rfind(b"\n", 0, offset)) + 1
    line = payload[start:offset]
    name = line[:3].decode("ascii", "replace")
    fields = line.count(line[3:4]) if len(line) > 3 else 0
    return f"{name}-{fields + (1 if name == 'MSH' else 0)}" if fields else name
