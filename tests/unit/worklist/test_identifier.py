"""wlmd.worklist.identifier: the request identifier read from its bytes gives pydicom's mask.

The fast reader must give exactly the search mask that pydicom's lazily decoded
Dataset gives (``check_search_mask`` on either), or give up (None) so that
pydicom decodes. Checked on every differential case in three transfer syntaxes,
with sequences of defined and undefined length, and on seeded mutations of
them (bytes flipped, cut, repeated): wherever the fast reader answers, pydicom
decodes the same bytes to an equal mask.
"""

from __future__ import annotations

import random
import struct
import warnings
from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from tests.differential.cases import CASES
from tests.helpers.worklists import query
from wlmd.worklist import keys
from wlmd.worklist.identifier import parse
from wlmd.worklist.searchmask import SearchMask, check_search_mask

SYNTAXES = {"implicit": (True, True), "explicit": (False, True), "big": (False, False)}
QUERIES = [case.query for case in CASES if case.query is not None]


def _undefined_lengths(ds: Dataset) -> Dataset:
    """The same data set, its sequences and items written with undefined lengths."""
    for element in ds:
        if element.VR == "SQ":
            element.value.is_undefined_length = True
            for item in element.value:
                item.is_undefined_length_sequence_item = True
                _undefined_lengths(item)
    return ds


def _encoded(ds: Dataset, implicit: bool, little: bool) -> bytes:
    data = encode(ds, implicit, little)
    assert data is not None
    return data


def _slow(data: bytes, implicit: bool, little: bool) -> SearchMask | None:
    """pydicom's decoding, as before the fast reader; None where it raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom's warnings about the mutated bytes
        try:
            return check_search_mask(decode(BytesIO(data), implicit, little))
        except Exception:
            return None


def _fast(data: bytes, implicit: bool, little: bool) -> SearchMask | None:
    level = parse(data, implicit, little)
    return None if level is None else check_search_mask(level)


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("undefined", [False, True], ids=["defined", "undefined"])
def test_every_differential_query_is_read_fast_and_alike(syntax: str, undefined: bool) -> None:
    implicit, little = SYNTAXES[syntax]
    for ds in QUERIES:
        source = _undefined_lengths(ds.copy()) if undefined else ds
        data = _encoded(source, implicit, little)
        fast = _fast(data, implicit, little)
        assert fast is not None, ds
        assert fast == _slow(data, implicit, little), ds


@pytest.mark.parametrize("syntax", SYNTAXES)
def test_mutated_requests_give_pydicom_s_mask_or_none(syntax: str) -> None:
    """Seeded mutations: where the fast reader answers, it answers as pydicom does."""
    implicit, little = SYNTAXES[syntax]
    rng = random.Random(12)
    answered = 0
    for n in range(3000):
        ds = QUERIES[n % len(QUERIES)]
        source = _undefined_lengths(ds.copy()) if n % 2 else ds
        data = bytearray(_encoded(source, implicit, little))
        for _ in range(rng.randint(1, 3)):
            kind = rng.randrange(4)
            pos = rng.randrange(len(data))
            if kind == 0:
                data[pos] = rng.randrange(256)
            elif kind == 1:
                del data[pos:]
            elif kind == 2:
                data[pos:pos] = data[pos : pos + rng.randint(1, 16)]
            else:
                data[pos] ^= 1 << rng.randrange(8)
            if not data:
                data += b"\x00"
        fast = _fast(bytes(data), implicit, little)
        if fast is None:
            continue
        answered += 1
        assert fast == _slow(bytes(data), implicit, little), bytes(data).hex()
    assert answered > 300  # most single-byte changes hit values: still the plain case


def _element(tag: int, value: bytes) -> bytes:
    return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, len(value)) + value


def test_an_empty_identifier_is_an_empty_level() -> None:
    level = parse(b"", True, True)
    assert level is not None and level.elements == {}


@pytest.mark.parametrize(
    "data",
    [
        _element(keys.PATIENT_ID, b"P1") + b"\x00\x00",  # trailing bytes
        _element(keys.PATIENT_ID, b"P1")[:-1],  # value cut
        _element(keys.PATIENT_ID, b"P1") * 2,  # repeated tag
        struct.pack("<HHL", 0x0010, 0x0020, 0xFFFFFFFF),  # undefined length, not a sequence
        _element(keys.PATIENT_ID, b"X" * 0x4F4C),  # its length reads "LO": pydicom goes explicit
    ],
    ids=["trailing", "cut", "repeated", "undefined-length", "looks-explicit"],
)
def test_unusual_bytes_are_left_to_pydicom(data: bytes) -> None:
    assert parse(data, True, True) is None


def test_an_implicit_vr_item_in_an_explicit_data_set_is_left_to_pydicom() -> None:
    """pydicom reads such an item as implicit VR (PS3.5 6.2.2 allows it for UN sequences)."""
    item = _element(keys.MODALITY, b"CT")
    sps = struct.pack("<HH", 0x0040, 0x0100) + b"SQ\x00\x00"
    sps += struct.pack("<L", len(item) + 8) + struct.pack("<HHL", 0xFFFE, 0xE000, len(item)) + item
    assert parse(sps, False, True) is None


def test_an_item_that_is_not_an_item_is_left_to_pydicom() -> None:
    sps = keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE
    not_item = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
    assert parse(_element(sps, not_item), True, True) is None


def test_an_empty_un_key_gets_the_dictionary_vr_as_through_pydicom() -> None:
    """Explicit VR 'UN' with no value: pydicom's reader keeps None, the mask says PN."""
    data = struct.pack("<HH", 0x0010, 0x0010) + b"UN\x00\x00" + struct.pack("<L", 0)
    fast = _fast(data, False, True)
    assert fast is not None and fast == _slow(data, False, True)
    assert fast.nodes[0].vr == "PN"  # type: ignore[union-attr]


def test_a_latin1_value_is_decoded_with_the_request_charset() -> None:
    ds = query(SpecificCharacterSet="ISO_IR 100", PatientName=None)
    data = _encoded(ds, True, True)
    data += _element(keys.PATIENT_ID, "MÜLLER".encode("latin-1"))
    fast = _fast(data, True, True)
    assert fast is not None and fast == _slow(data, True, True)
    assert fast.request_charset == "ISO_IR 100"
