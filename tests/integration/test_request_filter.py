"""--request-filter with a real wlmd and DCMTK's findscu: rewritten, refused and broken filters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.worklists import complete_entry, make_area, query

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "request-filters"
CT_ON_WRONG_STATION = query(
    PatientID=None, sps={"Modality": "CT", "ScheduledStationAETitle": "WRONG"}
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> Path:
    root = tmp_path_factory.mktemp("filter-data")
    station = "ScheduledStationAETitle"
    make_area(
        root,
        "WLMD",
        {  # type: ignore[arg-type]
            "a.wl": complete_entry(PatientID="F1", Modality="CT", **{station: "CT_ROOM1"}),
            "b.wl": complete_entry(PatientID="F2", Modality="CT", **{station: "CT_ROOM2"}),
            "c.wl": complete_entry(PatientID="F3", Modality="US", **{station: "US_ROOM3"}),
        },
    )
    return root


@pytest.fixture
def serve(data_root: Path, dcmtk: dict[str, str]) -> Iterator[object]:
    def start(filter_file: Path | str) -> object:
        return servers.wlmd(data_root, ["-v", "--request-filter", str(filter_file)])

    yield start


def patient_ids(result: object) -> list[str]:
    return sorted(str(ds.PatientID) for ds in result.datasets)  # type: ignore[attr-defined]


def test_without_the_filter_a_wrong_station_finds_nothing(data_root: Path, dcmtk: dict) -> None:
    with servers.wlmd(data_root) as server:
        result = findscu(server.port, CT_ON_WRONG_STATION, aec="WLMD", aet="CT_OLD")
        assert result.final_status == 0x0000 and patient_ids(result) == []


def test_the_filter_drops_the_station_for_listed_callers(serve) -> None:
    with serve(EXAMPLES / "drop_station_aet.py") as server:
        dropped = findscu(server.port, CT_ON_WRONG_STATION, aec="WLMD", aet="CT_OLD")
        assert patient_ids(dropped) == ["F1", "F2"]
        other = findscu(server.port, CT_ON_WRONG_STATION, aec="WLMD", aet="MR01")
        assert patient_ids(other) == [], "callers not listed are untouched"


def test_a_refusal_is_unable_to_process(serve) -> None:
    with serve(EXAMPLES / "force_modality.py") as server:
        forced = findscu(server.port, query(PatientID=None, sps={"Modality": ""}),
                         aec="WLMD", aet="US_ROOM3")  # fmt: skip
        assert patient_ids(forced) == ["F3"]
        refused = findscu(server.port, query(PatientID=None), aec="WLMD", aet="UNKNOWN")
        assert refused.final_status == 0xC000 and patient_ids(refused) == []
        assert "status 0xC000 (refused by the request filter)" in server.log()  # type: ignore


def test_a_broken_filter_answers_unfiltered(serve, tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("def request_filter(query, request):\n    return query.NoSuchKeyword\n")
    with serve(broken) as server:
        result = findscu(server.port, query(PatientID="F2"), aec="WLMD")
        assert result.final_status == 0x0000 and patient_ids(result) == ["F2"]
        assert "request filter failed (AttributeError)" in server.log()  # type: ignore


def test_a_filter_that_does_not_load_stops_start_up(data_root: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def request_filter(query request):\n")
    result = servers.run_wlmd_cli(["--request-filter", str(bad), "-dfp", str(data_root), "11998"])
    assert result.returncode == 2
    assert (
        result.stderr.strip().splitlines()
        == [
            f"wlmd: bad --request-filter: {bad}: SyntaxError: invalid syntax. Perhaps you forgot a "
            "comma? (bad.py, line 1)"
        ]
        or "SyntaxError" in result.stderr
    )
