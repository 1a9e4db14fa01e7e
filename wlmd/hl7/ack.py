"""ACK messages (HL7 v2.5.1 2.9.2, original acknowledgment mode).

The ACK swaps MSH's sender and receiver (MSH-3/4 <-> MSH-5/6), keeps the
version, processing ID and character set of the message, carries MSA-1
(AA accepted, AE error: fix and resend, AR rejected: do not resend as is)
and MSA-2 = the message's MSH-10, so the RIS can match it. A refusal adds
an ERR segment that a RIS interface engineer can act on: where (segment and
field) and why, with an HL7 table 0357 code. v2.5 and later get ERR-2
(location), ERR-3 (code), ERR-4 (severity) and ERR-8 (the text); v2.3.1 gets
ERR-1 (segment^sequence^field^code), its only field. MSA-3 carries the text
too: many interface engines show only MSA.
"""

from __future__ import annotations

import datetime as _dt
import itertools

from wlmd.hl7.message import Header, Hl7Error

_COUNTER = itertools.count(1)

_TEXTS = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}


def escape(text: str, header: Header) -> str:
    """``text`` with HL7's separators escaped (\\F\\ \\S\\ \\R\\ \\T\\ \\E\\), one line."""
    sep = header.field_separator
    chars = (header.encoding_characters + "^~\\&")[:4]
    comp, rep, esc, sub = chars[0], chars[1], chars[2], chars[3]
    out = []
    for char in text.replace("\r", " ").replace("\n", " "):
        if char == esc:
            out.append(f"{esc}E{esc}")
        elif char == sep:
            out.append(f"{esc}F{esc}")
        elif char == comp:
            out.append(f"{esc}S{esc}")
        elif char == rep:
            out.append(f"{esc}R{esc}")
        elif char == sub:
            out.append(f"{esc}T{esc}")
        else:
            out.append(char)
    return "".join(out)


def control_id() -> str:
    """A control ID for an ACK: unique in this process, at most 20 characters (ST)."""
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%d%H%M%S")
    return f"{stamp}{next(_COUNTER) % 1000000:06d}"


def build(
    header: Header,
    code: str = "AA",
    error: Hl7Error | None = None,
    text: str = "",
    now: _dt.datetime | None = None,
) -> str:
    """The ACK for the message ``header`` came from, as text (segments end in CR)."""
    sep = header.field_separator
    comp = header.encoding_characters[:1]
    sub = header.encoding_characters[3:4]
    version = header.component(12, 1) or "2.5.1"
    trigger = header.component(9, 2)
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d%H%M%S")
    msh = [
        "MSH",
        header.encoding_characters,
        header.get(5),
        header.get(6),
        header.get(3),
        header.get(4),
        stamp,
        "",
        comp.join(["ACK", trigger, "ACK"]) if trigger else "ACK",
        control_id(),
        header.get(11) or "P",
        header.get(12) or version,
    ]
    charset = header.get(18)
    if charset:
        msh += ["", "", "", "", "", charset]
    message = error.reason if error else text
    where = f"{error.where}: {error.reason}" if error and error.where else message
    msa = ["MSA", code, header.get(10), escape(where, header)[:400]]
    segments = [sep.join(msh), sep.join(msa)]
    if error is not None:
        segments.append(_err(error, header, version, sep, comp, sub))
    return "\r".join(segments) + "\r"


def _err(error: Hl7Error, header: Header, version: str, sep: str, comp: str, sub: str) -> str:
    segment, field = _location(error.where)
    code_text = _TEXTS.get(error.code, "")
    if version.startswith(("2.1", "2.2", "2.3", "2.4")):
        code = sub.join([str(error.code), code_text, "HL70357"])
        return sep.join(["ERR", comp.join([segment, "1" if segment else "", field, code])])
    location = comp.join([segment, "1" if segment else "", field]) if segment else ""
    return sep.join(
        [
            "ERR",
            "",
            location,
            comp.join([str(error.code), code_text, "HL70357"]),
            "E",
            "",
            "",
            "",
            escape(error.reason, header)[:400],
        ]
    )


def _location(where: str) -> tuple[str, str]:
    """``PID-5.1`` -> ("PID", "5"); "" -> ("", "")."""
    if not where:
        return "", ""
    segment, _, rest = where.partition("-")
    return segment[:3], rest.split(".")[0]
