"""Request files (-rfp/-rff): names from placeholders, sanitised values, dcmdump-like text."""

from __future__ import annotations

import datetime as dt
import logging
import os
import resource
import signal
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import query
from wlmd.services.requestlog import dump, request_file_name, sanitize, write_request_file

NOW = dt.datetime(2024, 1, 15, 9, 30, 5, 123456)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("MODALITY1", "MODALITY1"),
        ("../../etc/x", "______etc_x"),
        ("/", "_"),
        (".", "_"),
        ("..", "__"),
        ("a b", "a_b"),
        ("  AE  ", "AE"),
        ("A-B_C", "A-B_C"),
        ("Ä\x00\n", "__"),  # surrounding whitespace is stripped first
        ("", ""),
    ],
)
def test_sanitize(value: str, expected: str) -> None:
    assert sanitize(value) == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("#t.dump", "20240115093005123456.dump"),
        ("#a_#c_#p.txt", "CALLING_CALLED_PID1.txt"),
        ("#i.log", "4242.log"),
        ("#a#a", "CALLINGCALLING"),
        ("fixed", "fixed"),
        ("#x#", "#x#"),  # unknown placeholders stay
        ("", "request_20240115093005123456"),
    ],
)
def test_request_file_name(pattern: str, expected: str) -> None:
    name = request_file_name(
        pattern, calling_ae="CALLING", called_ae="CALLED", patient_id="PID1", pid=4242, now=NOW
    )
    assert name == expected


@pytest.mark.parametrize(
    ("calling", "called", "patient_id", "expected"),
    [
        ("../../etc", "AE", "x", "______etc_AE_x"),
        ("A", "B", "../../etc/passwd", "A_B_______etc_passwd"),
        ("A", "B", "/", "A_B__"),
        ("#c", "B", "#a", "_c_B__a"),  # substituted values are not expanded again
    ],
)
def test_request_file_name_values_are_sanitised(
    calling: str, called: str, patient_id: str, expected: str
) -> None:
    name = request_file_name(
        "#a_#c_#p", calling_ae=calling, called_ae=called, patient_id=patient_id, now=NOW
    )
    assert name == expected
    assert "/" not in name


@pytest.mark.parametrize("pattern", ["#p", ".", ".."])
def test_request_file_name_never_dot_or_empty(pattern: str) -> None:
    name = request_file_name(pattern, calling_ae="A", called_ae="B", patient_id="", now=NOW)
    assert name not in ("", ".", "..")


def test_write_request_file(tmp_path: Path) -> None:
    ds = query(PatientID="../../evil", PatientName="DOE^JOHN", sps={"Modality": "CT"})
    path = write_request_file(str(tmp_path), "#p.dump", ds, "A", "B")
    assert path is not None
    assert Path(path).parent == tmp_path
    assert Path(path).name == "______evil.dump"
    text = Path(path).read_text()
    assert "(0010,0010) PN [DOE^JOHN]" in text
    assert "(0040,0100) SQ" in text


def test_write_request_file_failure_is_logged(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.ERROR, logger="wlmd.requestlog"):
        assert (
            write_request_file(str(tmp_path / "missing"), "x.dump", query(PatientID="1"), "A", "B")
            is None
        )
    assert "could not write request file" in caplog.text


def test_write_request_file_removes_an_incomplete_file(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    """A write cut short (a full disk; here RLIMIT_FSIZE) leaves no truncated file behind."""
    ds = query(PatientID="1", PatientComments="x" * 5000)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    old_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
    try:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))  # the kernel writes 1000 bytes
        with caplog.at_level(logging.ERROR, logger="wlmd.requestlog"):
            path = write_request_file(str(tmp_path), "x.dump", ds, "A", "B")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old_handler)
    assert path is None
    assert list(tmp_path.iterdir()) == []
    assert f"could not write request file {tmp_path / 'x.dump'}" in caplog.text
    assert "File too large" in caplog.text and "incomplete file removed" in caplog.text


def test_write_request_file_does_not_follow_symlinks(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("precious")
    os.symlink(target, tmp_path / "x.dump")
    assert write_request_file(str(tmp_path), "x.dump", query(PatientID="1"), "A", "B") is None
    assert target.read_text() == "precious"


def test_dump_format() -> None:
    ds = query(PatientName="DOE^JOHN", PatientID="", sps={"Modality": "CT"})
    ds.add_new(0x00091001, "LO", "private")
    text = dump(ds)
    lines = text.splitlines()
    assert lines[:2] == ["", "# Dicom-Data-Set"]
    assert text.endswith("\n")
    assert any(
        line.startswith("(0010,0010) PN [DOE^JOHN]") and line.endswith("PatientName")
        for line in lines
    )
    assert any(line.startswith("(0010,0020) LO (no value available)") for line in lines)
    assert any(line.startswith("(0040,0100) SQ") and "#=1" in line for line in lines)
    assert "(fffe,e000)" in text
    assert any(line.startswith("    (0008,0060) CS [CT]") for line in lines)  # nested, indented
    assert "(fffe,e0dd)" in text
    assert "(0009,1001) LO [private]" in text


def test_dump_empty() -> None:
    assert dump(Dataset()) == "\n# Dicom-Data-Set\n"
