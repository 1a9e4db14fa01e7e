"""encode_identifier: PS3.5 encoding of response trees, checked by decoding with pydicom."""

from __future__ import annotations

import struct
from io import BytesIO

import pytest
from pynetdicom.dsutils import decode

from tests.unit.conftest import mask_of
from wlmd.settings.config import ReturnCharset
from wlmd.worklist import keys
from wlmd.worklist.encode import (
    DEFLATED_EXPLICIT_LITTLE,
    EXPLICIT_BIG,
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    Encoding,
    encode_identifier,
)
from wlmd.worklist.respond import ResponseElement, ResponseSequence, build_response

T = keys.tag
ENCODINGS = [
    pytest.param(IMPLICIT_LITTLE, id="implicit-le"),
    pytest.param(EXPLICIT_LITTLE, id="explicit-le"),
    pytest.param(EXPLICIT_BIG, id="explicit-be"),
    pytest.param(DEFLATED_EXPLICIT_LITTLE, id="deflated"),
]


def _decode(data: bytes, enc: Encoding):  # type: ignore[no-untyped-def]
    return decode(BytesIO(data), enc.implicit_vr, enc.little_endian, enc.deflated)


TREE = [
    ResponseElement(T("PatientName"), "PN", b"DOE^JOHN"),
    ResponseElement(T("PatientID"), "LO", b"PID1"),  # even length
    ResponseElement(T("AccessionNumber"), "SH", b"ACC"),  # odd: space padded
    ResponseElement(T("StudyInstanceUID"), "UI", b"1.2.3"),  # odd: NUL padded
    ResponseElement(T("PregnancyStatus"), "US", struct.pack("<H", 4)),
    ResponseElement(T("PatientWeight"), "DS", b""),
    ResponseElement(T("SpecificCharacterSet"), "CS", b"ISO_IR 100"),  # out of order on purpose
    ResponseSequence(
        T("ScheduledProcedureStepSequence"),
        [
            [
                ResponseElement(T("Modality"), "CS", b"CT"),
                ResponseElement(T("ScheduledProcedureStepStartDate"), "DA", b"20240115"),
                ResponseSequence(
                    T("ScheduledProtocolCodeSequence"),
                    [
                        [ResponseElement(T("CodeValue"), "SH", b"C1")],
                        [ResponseElement(T("CodeValue"), "SH", b"C22")],
                    ],
                ),
            ],
            [ResponseElement(T("Modality"), "CS", b"MR")],
        ],
    ),
    ResponseSequence(T("ReferencedStudySequence"), []),
]


@pytest.mark.parametrize("enc", ENCODINGS)
def test_round_trip(enc: Encoding) -> None:
    ds = _decode(encode_identifier(TREE, enc), enc)
    assert [int(e.tag) for e in ds] == sorted(n.tag for n in TREE)
    assert ds.PatientName == "DOE^JOHN"
    assert ds.PatientID == "PID1"
    assert ds.AccessionNumber == "ACC"
    assert ds.StudyInstanceUID == "1.2.3"
    assert ds.PregnancyStatus == 4
    assert ds.PatientWeight is None
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    sps = ds.ScheduledProcedureStepSequence
    assert len(sps) == 2
    assert sps[0].Modality == "CT"
    assert sps[0].ScheduledProcedureStepStartDate == "20240115"
    assert [c.CodeValue for c in sps[0].ScheduledProtocolCodeSequence] == ["C1", "C22"]
    assert sps[1].Modality == "MR"
    assert len(ds.ReferencedStudySequence) == 0
    if not enc.implicit_vr:
        assert ds["PatientName"].VR == "PN"
        assert ds["PregnancyStatus"].VR == "US"
        assert ds["StudyInstanceUID"].VR == "UI"
        assert ds["ScheduledProcedureStepSequence"].VR == "SQ"


@pytest.mark.parametrize(
    ("vr", "value", "padded"),
    [
        ("UI", b"1.2.3", b"1.2.3\x00"),
        ("PN", b"ABC", b"ABC "),
        ("LO", b"ABC", b"ABC "),
        ("CS", b"", b""),
        ("SH", b"AB", b"AB"),
        ("UN", b"\x01", b"\x01\x00"),
    ],
)
def test_padding(vr: str, value: bytes, padded: bytes) -> None:
    data = encode_identifier([ResponseElement(0x00100010, vr, value)], EXPLICIT_LITTLE)
    assert data[8 if vr != "UN" else 12 :] == padded
    assert len(data) % 2 == 0


@pytest.mark.parametrize(
    ("enc", "expected"),
    [
        (IMPLICIT_LITTLE, b"\x10\x00\x10\x00\x04\x00\x00\x00ABC "),
        (EXPLICIT_LITTLE, b"\x10\x00\x10\x00PN\x04\x00ABC "),
        (EXPLICIT_BIG, b"\x00\x10\x00\x10PN\x00\x04ABC "),
    ],
)
def test_element_header_bytes(enc: Encoding, expected: bytes) -> None:
    assert encode_identifier([ResponseElement(T("PatientName"), "PN", b"ABC")], enc) == expected


def test_us_is_byte_swapped_in_big_endian() -> None:
    node = ResponseElement(T("PregnancyStatus"), "US", struct.pack("<H", 0x0102))
    assert encode_identifier([node], EXPLICIT_BIG) == b"\x00\x10\x21\xc0US\x00\x02\x01\x02"


def test_sequence_bytes_explicit_little() -> None:
    node = ResponseSequence(
        T("ReferencedStudySequence"), [[ResponseElement(T("ReferencedSOPClassUID"), "UI", b"1.2")]]
    )
    item = b"\x08\x00\x50\x11UI\x04\x001.2\x00"
    expected = (
        b"\x08\x00\x10\x11SQ\x00\x00" + struct.pack("<I", 8 + len(item))
        + b"\xfe\xff\x00\xe0" + struct.pack("<I", len(item)) + item
    )  # fmt: skip
    assert encode_identifier([node], EXPLICIT_LITTLE) == expected


def test_too_long_value_for_a_short_vr_becomes_un() -> None:
    node = ResponseElement(T("PatientComments"), "LO", b"x" * 0x10000)
    data = encode_identifier([node], EXPLICIT_LITTLE)
    assert data[4:8] == b"UN\x00\x00"
    assert struct.unpack("<I", data[8:12])[0] == 0x10000


@pytest.mark.parametrize("enc", ENCODINGS)
def test_built_response_round_trip(make_entry, enc: Encoding) -> None:  # type: ignore[no-untyped-def]
    entry = make_entry(SpecificCharacterSet="ISO_IR 100", PatientName="MÜLLER^ÄNNE")
    mask = mask_of(
        PatientName=None, PatientID=None, PregnancyStatus=None, ScheduledProcedureStepSequence=[]
    )
    nodes = build_response(entry, mask, ReturnCharset.KEEP)
    ds = _decode(encode_identifier(nodes, enc), enc)
    assert ds.SpecificCharacterSet == "ISO_IR 100"
    assert ds.PatientName == "MÜLLER^ÄNNE"
    assert ds.PatientID == "PID0001"
    assert ds.PregnancyStatus == 4
    sps = ds.ScheduledProcedureStepSequence[0]
    assert sps.Modality == "CT"
    assert sps.ScheduledStationAETitle == "STATION1"
    assert sps.ScheduledProcedureStepStartTime == "093000"
    assert "ScheduledProtocolCodeSequence" not in sps


def test_deflated_is_raw_deflate_of_explicit_little() -> None:
    import zlib

    data = encode_identifier(TREE, DEFLATED_EXPLICIT_LITTLE)
    assert zlib.decompress(data, -zlib.MAX_WBITS) == encode_identifier(TREE, EXPLICIT_LITTLE)
