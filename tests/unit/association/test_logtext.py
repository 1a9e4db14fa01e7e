"""Texts of operator log lines: association tags, refused contexts, offending keys, first bytes."""

from __future__ import annotations

import re

import pytest

from wlmd.association.logtext import association_prefix, describe_context, describe_tags
from wlmd.association.wire import first_byte_problem
from wlmd.process.worker import next_association_id


def test_association_prefix_is_a_and_six_base36_digits() -> None:
    assert association_prefix(0.0) == "a000000"
    assert association_prefix(3.6) == "a000010"  # 36 tenths of a second
    assert re.fullmatch(r"a[0-9a-z]{6}", association_prefix(1_796_000_000.0))


def test_restarts_a_tenth_of_a_second_apart_get_different_prefixes() -> None:
    started = 1_796_000_000.0
    prefixes = {association_prefix(started + n / 10) for n in range(1000)}
    assert len(prefixes) == 1000


def test_association_ids_count_under_the_process_prefix() -> None:
    first, second = next_association_id(), next_association_id()
    prefix, _, number = first.partition(".")
    assert re.fullmatch(r"a[0-9a-z]{6}", prefix), first
    assert second == f"{prefix}.{int(number) + 1}"


def test_describe_context_names_abstract_and_transfer_syntaxes() -> None:
    text = describe_context(
        "1.2.840.10008.5.1.4.1.2.1.1", ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"], 0x03
    )
    assert text == (
        "1.2.840.10008.5.1.4.1.2.1.1 (Patient Root Query/Retrieve Information Model - FIND)"
        " with 1.2.840.10008.1.2 (Implicit VR Little Endian),"
        " 1.2.840.10008.1.2.1 (Explicit VR Little Endian): abstract syntax not supported"
    )


def test_describe_context_unknown_uid_and_result() -> None:
    assert describe_context("1.2.3.4", ["1.2.3.5"], 0x04) == (
        "1.2.3.4 with 1.2.3.5: transfer syntaxes not supported"
    )
    assert describe_context("1.2.3.4", [], 0x09).endswith("no transfer syntax: result 9")


def test_describe_tags_names_keys_never_values() -> None:
    assert describe_tags([0x00400002, 0x00100010]) == (
        "(0040,0002) ScheduledProcedureStepStartDate, (0010,0010) PatientName"
    )
    assert describe_tags([0x00091001]) == "(0009,1001) unknown key"


@pytest.mark.parametrize(
    ("first", "text"),
    [
        (0x01, None),  # A-ASSOCIATE-RQ: go on
        (ord("G"), "not DICOM: first byte 0x47 ('G'), closed"),
        (0x16, "not DICOM: first byte 0x16 (a TLS ClientHello: the client uses TLS, "),
        (0x00, "not DICOM: first byte 0x00, closed"),
        (0xFF, "not DICOM: first byte 0xFF, closed"),
        (0x04, "P-DATA-TF (PDU type 0x04) before an association request, closed"),
        (0x07, "A-ABORT (PDU type 0x07) before an association request, closed"),
    ],
)
def test_first_byte_problem(first: int, text: str | None) -> None:
    got = first_byte_problem(first)
    if text is None:
        assert got is None
    else:
        assert got is not None and got.startswith(text), got
