"""The remembered ACKs on disk, and Intake read back from them as after a restart."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.helpers.worklists import make_area
from wlmd.authoring.editor import AreaEditor
from wlmd.hl7 import intake as intake_module
from wlmd.hl7.intake import Intake
from wlmd.hl7.journal import FILE_NAME, Journal, Remembered

DATA = Path(__file__).resolve().parents[2] / "data" / "hl7"


def record(n: int) -> Remembered:
    return Remembered(f"MSH|^~\\&|Ø{n}\rMSA|AA|C{n}\r".encode("latin-1"), "ORM^O01", "NW", "AA", "")


def test_records_come_back_in_order_bytes_intact(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / FILE_NAME), keep=10)
    for n in range(3):
        journal.append(("RIS", "HOSP", f"C{n}"), record(n))
    loaded = list(Journal(str(tmp_path / FILE_NAME), keep=10).load())
    assert loaded == [(("RIS", "HOSP", f"C{n}"), record(n)) for n in range(3)]


def test_no_file_is_nothing_remembered(tmp_path: Path) -> None:
    assert list(Journal(str(tmp_path / FILE_NAME), keep=10).load()) == []


def test_a_torn_line_is_skipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / FILE_NAME
    journal = Journal(str(path), keep=10)
    journal.append(("RIS", "", "C1"), record(1))
    path.write_bytes(path.read_bytes() + b'{"sender":"RIS","con')
    with caplog.at_level(logging.WARNING, "wlmd.hl7"):
        loaded = list(Journal(str(path), keep=10).load())
    assert [key for key, _ in loaded] == [("RIS", "", "C1")]
    assert "1 unreadable line(s) skipped" in caplog.text


def test_compaction_keeps_the_newest(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    journal = Journal(str(path), keep=3)
    items = []
    for n in range(6):
        assert not journal.due
        key = ("RIS", "", f"C{n}")
        journal.append(key, record(n))
        items.append((key, record(n)))
    assert journal.due
    journal.compact(items)
    assert not journal.due
    assert [k[2] for k, _ in Journal(str(path), keep=3).load()] == ["C3", "C4", "C5"]
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME], "no temporary left"


def test_an_unwritable_journal_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = Journal(str(tmp_path / "missing" / FILE_NAME), keep=3)
    with caplog.at_level(logging.WARNING, "wlmd.hl7"):
        journal.append(("RIS", "", "C1"), record(1))
    assert "not written" in caplog.text and "applied again" in caplog.text


def _intake(area: Path) -> Intake:
    editor = AreaEditor(str(area.parent), area.name, 5.0)
    return Intake(editor, None, {"CR": "CR01"}, Journal.in_area(str(area), 100))


def _message(control: str, control_id: str) -> bytes:
    text = (DATA / "orm-medora-ascii-lf.hl7").read_bytes()
    return text.replace(b"ORC|NW", b"ORC|" + control.encode()).replace(
        b"MED00042", control_id.encode()
    )


def test_a_new_intake_answers_a_repeat_from_the_journal(tmp_path: Path) -> None:
    area = make_area(tmp_path, "WLMD", {})
    first = _intake(area)
    nw = first.handle(_message("NW", "J-1"))
    ca = first.handle(_message("CA", "J-2"))
    assert (nw.code, ca.code) == ("AA", "AA") and not list(area.glob("*.wl"))
    restarted = _intake(area)  # as the listener after a restart
    again = restarted.handle(_message("NW", "J-1"))
    assert again.repeated and again.ack == nw.ack and again.control_id == "J-1"
    assert not list(area.glob("*.wl")), "the cancelled order stays cancelled"
    fresh = restarted.handle(_message("NW", "J-3"))
    assert fresh.code == "AA" and not fresh.repeated and len(list(area.glob("*.wl"))) == 1


def test_a_transient_refusal_is_not_written(tmp_path: Path) -> None:
    area = make_area(tmp_path, "WLMD", {})
    os.remove(area / "lockfile")  # the area unusable: AE that may pass later
    outcome = _intake(area).handle(_message("NW", "J-9"))
    assert outcome.code == "AE"
    assert not (area / FILE_NAME).exists()


def test_only_the_last_remembered_are_kept_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "REMEMBERED", 2)
    area = make_area(tmp_path, "WLMD", {})
    first = _intake(area)
    for n in range(3):
        first.handle(_message("NW", f"K-{n}"))
    restarted = _intake(area)
    assert not restarted.handle(_message("NW", "K-0")).repeated, "forgotten: applied again"
    assert restarted.handle(_message("NW", "K-2")).repeated
