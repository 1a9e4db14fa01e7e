"""run_find: statuses and the path of one query through a storage area."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, complete_entry, make_area, query
from tests.unit.conftest import wire
from wlmd.worklist import keys
from wlmd.worklist.area import StorageArea
from wlmd.worklist.query import FindOptions, run_find
from wlmd.worklist.respond import ResponseElement

T = keys.tag


def _area(tmp_path: Path, lockfile: bool = True, file_reject: bool = True) -> StorageArea:
    entries = {
        "a.wl": complete_entry(PatientID="P1", ScheduledStationAETitle="STATION1"),
        "b.wl": complete_entry(PatientID="P2", ScheduledStationAETitle="STATION2", Modality="MR"),
        "c.wl": complete_entry(PatientID="P3", ScheduledStationAETitle="STATION2"),
        "d.wl": complete_entry(PatientID="P4", ScheduledProcedureStepID=DROP),  # incomplete
    }
    area = make_area(tmp_path, "AE", entries, lockfile=lockfile)
    return StorageArea(str(area), file_reject=file_reject, lock_timeout=1)


def _ids(result) -> list[bytes]:  # type: ignore[no-untyped-def]
    out = []
    for nodes in result.responses:
        for n in nodes:
            if isinstance(n, ResponseElement) and n.tag == keys.PATIENT_ID:
                out.append(n.value)
    return out


def _find(
    area: StorageArea, calling: str = "MODALITY", options: FindOptions | None = None, **kw: Any
):  # type: ignore[no-untyped-def]
    return run_find(area, wire(query(**kw)), calling, options or FindOptions())


def test_all_matching_entries(tmp_path: Path) -> None:
    result = _find(_area(tmp_path), PatientID=None)
    assert result.final_status == keys.SUCCESS
    assert result.pending_status == keys.PENDING
    assert _ids(result) == [b"P1", b"P2", b"P3"]  # incomplete d.wl rejected, name order
    assert result.match_count == 3
    assert result.offending == []


def test_file_reject_off_serves_incomplete_files(tmp_path: Path) -> None:
    result = _find(_area(tmp_path, file_reject=False), PatientID=None)
    assert _ids(result) == [b"P1", b"P2", b"P3", b"P4"]


@pytest.mark.parametrize(
    ("request_keys", "ids"),
    [
        ({"PatientID": "P2"}, [b"P2"]),
        ({"PatientID": "P*"}, []),  # literal
        ({"PatientID": "NOPE"}, []),
        ({"PatientID": None, "sps": {"Modality": "CT"}}, [b"P1", b"P3"]),
    ],
)
def test_matching(tmp_path: Path, request_keys: dict[str, Any], ids: list[bytes]) -> None:
    result = _find(_area(tmp_path), **{"PatientID": None, **request_keys})
    assert result.final_status == keys.SUCCESS
    assert _ids(result) == ids


def test_invalid_request(tmp_path: Path) -> None:
    result = _find(_area(tmp_path), PatientID=None, PatientSex="m")
    assert result.final_status == keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert result.offending == [T("PatientSex")]
    assert result.error_comment == "Invalid Character Repertoire for datatype CS"
    assert result.responses == []


def test_invalid_request_two_problems(tmp_path: Path) -> None:
    result = _find(_area(tmp_path), PatientSex="m", StudyDate="2024")
    assert result.final_status == keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert result.offending == [T("StudyDate"), T("PatientSex")]
    assert result.error_comment == "Syntax error in 1 or more matching keys"


def test_invalid_request_with_no_fail_continues(tmp_path: Path) -> None:
    # multi-valued CS is invalid (backslash), but with --no-fail it is matched anyway
    options = FindOptions(no_fail=True)
    result = _find(_area(tmp_path), options=options, PatientID=None, PatientSex="M\\F")
    assert result.final_status == keys.SUCCESS
    assert _ids(result) == [b"P1", b"P2", b"P3"]


def test_invalid_request_fails_before_the_lock(tmp_path: Path) -> None:
    result = _find(_area(tmp_path, lockfile=False), PatientSex="m")
    assert result.final_status == keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS


def test_missing_lockfile(tmp_path: Path) -> None:
    result = _find(_area(tmp_path, lockfile=False), PatientID=None)
    assert result.final_status == keys.OUT_OF_RESOURCES
    assert result.responses == []
    assert 0 < len(result.error_comment) <= 64


def test_unlistable_area_fails_instead_of_looking_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    area = _area(tmp_path)
    assert _ids(_find(area, PatientID=None)) == [b"P1", b"P2", b"P3"]
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        if str(path) == area.path:  # as for a directory with mode 0300
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = _find(area, PatientID=None)
    assert result.final_status == keys.OUT_OF_RESOURCES
    assert result.responses == []
    assert result.error_comment == "Worklist storage area cannot be read"
    assert f"cannot read storage area {area.path}: Permission denied" in caplog.text


def test_unsupported_keys_give_ff01(tmp_path: Path) -> None:
    result = _find(_area(tmp_path), PatientID="P1", PatientAge=None)
    assert result.final_status == keys.SUCCESS
    assert result.pending_status == keys.PENDING_OPTIONAL_KEYS_UNSUPPORTED
    assert len(result.responses) == 1
    assert all(n.tag != T("PatientAge") for n in result.responses[0])


def test_specific_character_set_alone_is_not_unsupported(tmp_path: Path) -> None:
    result = _find(_area(tmp_path), PatientID="P1", SpecificCharacterSet="ISO_IR 100")
    assert result.pending_status == keys.PENDING


@pytest.mark.parametrize(
    ("limit", "final", "count"),
    [
        (0, keys.SUCCESS, 3),
        (1, keys.CANCEL, 1),
        (2, keys.CANCEL, 2),
        (3, keys.SUCCESS, 3),
        (5, keys.SUCCESS, 3),
    ],
)
def test_limit_answers(tmp_path: Path, limit: int, final: int, count: int) -> None:
    result = _find(_area(tmp_path), options=FindOptions(limit_answers=limit), PatientID=None)
    assert result.final_status == final
    assert len(result.responses) == count
    assert result.match_count == 3
    assert _ids(result) == [b"P1", b"P2", b"P3"][:count]


@pytest.mark.parametrize(
    ("calling", "request_keys", "ids"),
    [
        ("STATION2", {}, [b"P2", b"P3"]),
        ("STATION2  ", {}, [b"P2", b"P3"]),
        ("STATION1", {}, [b"P1"]),
        ("UNKNOWN", {}, []),
        (
            "STATION2",
            {"sps": {"ScheduledStationAETitle": "STATION1"}},
            [b"P1"],
        ),  # explicit station wins
        (
            "STATION2",
            {"sps": {"ScheduledStationAETitle": "*"}},
            [b"P2", b"P3"],
        ),  # universal: filter
        ("STATION2", {"sps": {"ScheduledStationAETitle": ""}}, [b"P2", b"P3"]),
        ("STATION2", {"sps": {"Modality": "CT"}}, [b"P3"]),
    ],
)
def test_filter_issuer_aet(
    tmp_path: Path, calling: str, request_keys: dict[str, Any], ids: list[bytes]
) -> None:
    options = FindOptions(filter_issuer_aet=True)
    result = _find(
        _area(tmp_path), calling=calling, options=options, PatientID=None, **request_keys
    )
    assert _ids(result) == ids


def test_filter_issuer_aet_off_by_default(tmp_path: Path) -> None:
    result = _find(_area(tmp_path), calling="STATION2", PatientID=None)
    assert _ids(result) == [b"P1", b"P2", b"P3"]


def test_responses_are_built_from_the_mask(tmp_path: Path) -> None:
    ds = Dataset()
    ds.PatientID = "P2"
    ds.PatientName = ""
    result = run_find(_area(tmp_path), wire(ds), "X", FindOptions())
    assert [[(n.tag, n.value) for n in r] for r in result.responses] == [
        [(T("PatientName"), b"DOE^JOHN"), (T("PatientID"), b"P2")]
    ]


def test_responses_are_built_after_the_read_lock_is_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writers wait for the matching only: entries are never changed, only replaced."""
    from contextlib import contextmanager

    from wlmd.worklist.respond import ResponsePlan

    area = _area(tmp_path)
    held: list[bool] = [False]
    built_while: list[bool] = []
    original_lock = area.read_locked
    original_build = ResponsePlan.build

    @contextmanager
    def tracking_lock(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        with original_lock(*args, **kwargs):
            held[0] = True
            try:
                yield
            finally:
                held[0] = False

    def tracking_build(self, *args: Any):  # type: ignore[no-untyped-def]
        built_while.append(held[0])
        return original_build(self, *args)

    monkeypatch.setattr(area, "read_locked", tracking_lock)
    monkeypatch.setattr(ResponsePlan, "build", tracking_build)
    result = _find(area, PatientID=None)
    assert _ids(result) == [b"P1", b"P2", b"P3"]
    assert built_while == [False, False, False]
