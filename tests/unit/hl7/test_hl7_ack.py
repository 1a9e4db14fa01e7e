"""ACKs (HL7 v2.5.1 2.9.2 original mode; IHE RAD TF-2 2.4: original mode; dcm4che's
HL7Message.makeACK for MSH-9): MSH swapped, MSA-1/2/3, ERR per version, escaping."""

from __future__ import annotations

import datetime as dt

import pytest

from wlmd.hl7 import ack
from wlmd.hl7.message import (
    APPLICATION_RECORD_LOCKED,
    REQUIRED_FIELD_MISSING,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_MESSAGE_TYPE,
    Hl7Error,
    read_header,
)

NOW = dt.datetime(2026, 12, 2, 14, 30, 5)
ORM = b"MSH|^~\\&|RIS|HOSP|WLMD|RAD|20261202083000||ORM^O01|RIS0001|P|2.3.1\rPID|1"
OMI = (
    b"MSH|^~\\&|ORBIS|UKL|WLMD|RAD|20261202083000||OMI^O23^OMI_O23|ORB-7|T|2.5.1"
    b"|||AL|NE||UNICODE UTF-8\rPID|1"
)


def segments(text: str) -> dict[str, list[str]]:
    assert text.endswith("\r")
    return {line[:3]: line.split("|") for line in text.rstrip("\r").split("\r")}


def msh_field(fields: list[str], number: int) -> str:
    """MSH-n of the split line (index 0 is "MSH", MSH-1 is the separator itself)."""
    return fields[number - 1]


@pytest.mark.parametrize(
    ("payload", "kind", "processing", "version", "charset"),
    [
        (ORM, "ACK^O01^ACK", "P", "2.3.1", None),
        (OMI, "ACK^O23^ACK", "T", "2.5.1", "UNICODE UTF-8"),
    ],
)
def test_accept_swaps_sender_and_receiver(
    payload: bytes, kind: str, processing: str, version: str, charset: str | None
) -> None:
    header = read_header(payload)
    text = ack.build(header, "AA", now=NOW)
    seg = segments(text)
    assert set(seg) == {"MSH", "MSA"}, "no ERR on AA"
    msh = seg["MSH"]
    assert msh_field(msh, 3) == header.get(5) and msh_field(msh, 4) == header.get(6)
    assert msh_field(msh, 5) == header.get(3) and msh_field(msh, 6) == header.get(4)
    assert msh_field(msh, 7) == "20261202143005"
    assert msh_field(msh, 9) == kind
    assert msh_field(msh, 10) and msh_field(msh, 10) != header.get(10)
    assert len(msh_field(msh, 10)) <= 20, "ST control ID"
    assert (msh_field(msh, 11), msh_field(msh, 12)) == (processing, version)
    assert (msh_field(msh, 18) if len(msh) > 17 else None) == charset, "MSH-18 as the message's"
    assert seg["MSA"] == ["MSA", "AA", header.get(10), ""]


def test_control_ids_are_unique() -> None:
    header = read_header(ORM)
    ids = {segments(ack.build(header, now=NOW))["MSH"][9] for _ in range(1000)}
    assert len(ids) == 1000


@pytest.mark.parametrize(
    ("code", "error_code", "where", "err_2", "err_3"),
    [
        ("AE", REQUIRED_FIELD_MISSING, "PID-5", "PID^1^5", "101^Required field missing^HL70357"),
        ("AE", TABLE_VALUE_NOT_FOUND, "ORC-1", "ORC^1^1", "103^Table value not found^HL70357"),
        (
            "AR",
            UNSUPPORTED_MESSAGE_TYPE,
            "MSH-9",
            "MSH^1^9",
            "200^Unsupported message type^HL70357",
        ),
        ("AE", APPLICATION_RECORD_LOCKED, "", "", "206^Application record locked^HL70357"),
    ],
)
def test_v2_5_refusal_has_err_2_3_4_8(
    code: str, error_code: int, where: str, err_2: str, err_3: str
) -> None:
    error = Hl7Error(code, error_code, where, "what to change")
    seg = segments(ack.build(read_header(OMI), code, error, now=NOW))
    msa, err = seg["MSA"], seg["ERR"]
    assert msa[1:3] == [code, "ORB-7"]
    assert msa[3] == (f"{where}: what to change" if where else "what to change")
    assert err[1] == "", "ERR-1 is for v2.4 and earlier"
    assert (err[2], err[3], err[4]) == (err_2, err_3, "E")
    assert err[8] == "what to change", "ERR-8 user message"


def test_v2_3_1_refusal_has_err_1_only() -> None:
    error = Hl7Error("AE", REQUIRED_FIELD_MISSING, "PID-5.1", "the patient name is empty")
    seg = segments(ack.build(read_header(ORM), "AE", error, now=NOW))
    assert seg["ERR"] == ["ERR", "PID^1^5^101&Required field missing&HL70357"]
    assert seg["MSA"][1:] == ["AE", "RIS0001", "PID-5.1: the patient name is empty"]


def test_reason_text_is_escaped_and_one_line() -> None:
    error = Hl7Error("AE", REQUIRED_FIELD_MISSING, "OBR-4", "a|b^c~d\\e&f\rg")
    seg = segments(ack.build(read_header(OMI), "AE", error, now=NOW))
    assert seg["ERR"][8] == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f g"
    assert seg["MSA"][3] == "OBR-4: a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f g"


def test_reason_is_bounded() -> None:
    error = Hl7Error("AE", REQUIRED_FIELD_MISSING, "", "x" * 1000)
    seg = segments(ack.build(read_header(OMI), "AE", error, now=NOW))
    assert len(seg["MSA"][3]) == 400 and len(seg["ERR"][8]) == 400


def test_other_encoding_characters_are_used() -> None:
    header = read_header(b"MSH#$%!@#RIS#H#WLMD#R#2026##ORM$O01#X1#P#2.5.1\rPID#1")
    error = Hl7Error("AE", REQUIRED_FIELD_MISSING, "PID-5", "a#b")
    text = ack.build(header, "AE", error, now=NOW)
    assert text.startswith("MSH#$%!@#WLMD#R#RIS#H#20261202143005##ACK$O01$ACK#")
    assert "\rMSA#AE#X1#PID-5: a!F!b\r" in text
    assert "\rERR##PID$1$5#101$Required field missing$HL70357#E####a!F!b\r" in text
