"""Storage areas: area names, which files are served, the parse cache, the store."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.worklists import DROP, complete_entry, make_area, write_wl
from wlmd.worklist import area as area_module
from wlmd.worklist.area import StorageArea
from wlmd.worklist.layout import is_valid_area_name
from wlmd.worklist.store import WorklistStore


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging if something blocks (e.g. opening a FIFO)."""

    def on_alarm(signum, frame):  # type: ignore[no-untyped-def]
        raise TimeoutError("blocked")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _names(area: StorageArea) -> list[str]:
    return [e.name for e in area.entries()]


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("", False),
        (" ", False),
        ("A" * 16, True),
        ("A" * 16 + "  ", True),  # trailing padding is not part of the title
        ("A" * 17, False),
        ("../x", False),
        ("..", False),
        ("a/b", False),
        ("a.b", False),
        ("OK_AE-1:@ ", True),
        ("ÄÖ", False),
        ("WLMD", True),
        ("A\\B", False),
        ("A\x00", False),
    ],
)
def test_is_valid_area_name(name: str, valid: bool) -> None:
    assert is_valid_area_name(name) is valid


def test_files_served_in_name_order(tmp_path: Path) -> None:
    area = make_area(
        tmp_path,
        "AE",
        {"b.wl": complete_entry(), "a.wl": complete_entry(), "c.wl": complete_entry()},
    )
    assert _names(StorageArea(str(area), file_reject=True)) == ["a.wl", "b.wl", "c.wl"]


def test_only_dot_wl_files_no_recursion(tmp_path: Path) -> None:
    ds = complete_entry()
    area = make_area(tmp_path, "AE", {"ok.wl": ds, "upper.WL": ds, "backup.wl.bak": ds, "noext": ds,
                                      "x.wlx": ds, "sub/inner.wl": ds})  # fmt: skip
    assert _names(StorageArea(str(area), file_reject=True)) == ["ok.wl"]


@pytest.mark.parametrize(
    "content",
    [b"", b"not dicom at all\n", b"\x00" * 128 + b"DICM" + b"\x02\x00"],
    ids=["zero-length", "text", "truncated"],
)
def test_bad_files_skipped_with_a_log_line(tmp_path: Path, content: bytes, caplog) -> None:  # type: ignore[no-untyped-def]
    area = make_area(tmp_path, "AE", {"bad.wl": content, "good.wl": complete_entry()})
    with caplog.at_level(logging.WARNING, logger="wlmd.worklist.store"):
        assert _names(StorageArea(str(area), file_reject=True)) == ["good.wl"]
    assert "bad.wl" in caplog.text


def test_directory_named_wl_skipped(tmp_path: Path) -> None:
    area = make_area(tmp_path, "AE", {"good.wl": complete_entry()})
    (area / "dir.wl").mkdir()
    assert _names(StorageArea(str(area), file_reject=True)) == ["good.wl"]


def test_fifo_named_wl_does_not_block(tmp_path: Path, alarm: None) -> None:
    area = make_area(tmp_path, "AE", {"good.wl": complete_entry()})
    os.mkfifo(area / "pipe.wl")
    assert _names(StorageArea(str(area), file_reject=True)) == ["good.wl"]


def test_symlinks(tmp_path: Path) -> None:
    outside = write_wl(tmp_path / "outside" / "secret.wl", complete_entry())
    area = make_area(tmp_path, "AE", {"real.wl": complete_entry()})
    (area / "out.wl").symlink_to(outside)
    (area / "in.wl").symlink_to(area / "real.wl")
    (area / "dangling.wl").symlink_to(tmp_path / "missing.wl")
    assert _names(StorageArea(str(area), file_reject=True)) == ["in.wl", "real.wl"]


def test_file_reject(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    area = make_area(
        tmp_path,
        "AE",
        {"bad.wl": complete_entry(ScheduledProcedureStepID=DROP), "ok.wl": complete_entry()},
    )
    with caplog.at_level(logging.WARNING, logger="wlmd.worklist.store"):
        assert _names(StorageArea(str(area), file_reject=True)) == ["ok.wl"]
    assert "ScheduledProcedureStepID" in caplog.text
    assert _names(StorageArea(str(area), file_reject=False)) == ["bad.wl", "ok.wl"]


def test_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    area_dir = make_area(
        tmp_path, "AE", {"a.wl": complete_entry(), "b.wl": complete_entry(PatientID=DROP)}
    )
    calls: list[str] = []
    real = area_module.load_entry

    def counting(path: str, name: str):  # type: ignore[no-untyped-def]
        calls.append(name)
        return real(path, name)

    monkeypatch.setattr(area_module, "load_entry", counting)
    area = StorageArea(str(area_dir), file_reject=True)
    with caplog.at_level(logging.WARNING, logger="wlmd.worklist.store"):
        first = area.entries()
        assert sorted(calls) == ["a.wl", "b.wl"]
        assert caplog.text.count("b.wl") == 1
        second = area.entries()
    assert sorted(calls) == ["a.wl", "b.wl"]  # unchanged: not parsed again
    assert second[0] is first[0]
    assert caplog.text.count("b.wl") == 1  # a bad file is logged once per change

    write_wl(area_dir / "a.wl", complete_entry(PatientID="NEW"))
    st = os.stat(area_dir / "a.wl")
    os.utime(area_dir / "a.wl", ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    third = area.entries()
    assert calls.count("a.wl") == 2
    assert third[0].elements[0x00100020] == b"NEW"

    (area_dir / "a.wl").unlink()
    assert area.entries() == []


def test_store_area(tmp_path: Path) -> None:
    make_area(tmp_path, "WLMD", {"a.wl": complete_entry()})
    (tmp_path / "plain").write_text("x")
    ws = WorklistStore(str(tmp_path))
    area = ws.area("WLMD  ")
    assert area is not None
    assert area.path == str(tmp_path / "WLMD")
    assert ws.area("WLMD") is area
    assert ws.area("OTHER") is None
    assert ws.area("plain") is None
    assert ws.area("../WLMD") is None
    assert ws.area("") is None
