"""Housekeeping on a clock the test controls: real SQLite store, real area files, the lock."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from tests.helpers.mpps import completed, in_progress
from tests.helpers.ups import backend_for
from tests.helpers.worklists import complete_entry, make_area
from wlmd.mpps.policy import Done
from wlmd.services.housekeeping import Housekeeper
from wlmd.settings.config import Config
from wlmd.state.mpps import MppsRepository

STUDY = "1.2.826.0.1.3680043.8.498.501"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def entry(sps: str, accession: str = "ACC1", study: str = STUDY, date: str = "20270201"):  # type: ignore[no-untyped-def]
    return complete_entry(
        StudyInstanceUID=study,
        ScheduledProcedureStepID=sps,
        AccessionNumber=accession,
        ScheduledProcedureStepStartDate=date,
        PatientName="SECRET^PATIENT",
    )


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    clock = Clock()
    root = tmp_path / "data"
    area = make_area(root, "WLMD", {"a.wl": entry("S1"), "b.wl": entry("S2", "ACC2")})
    store = MppsRepository(backend_for(str(tmp_path / "s.db")), clock=clock)

    def keeper(**settings: object) -> Housekeeper:
        config = dataclasses.replace(
            Config(
                port=104,
                data_files_path=str(root),
                mpps_ae_titles=("WLMD",),
                mpps_area="WLMD",
                mpps_entry_policy="hide-remove",
                mpps_remove_delay=600,
            ),
            **settings,
        )
        return Housekeeper(config, store, clock=clock)

    yield clock, area, store, keeper
    store.close()


def names(area: Path) -> list[str]:
    return sorted(p.name for p in area.iterdir() if p.name != "lockfile")


def test_hide_then_remove_after_the_delay(setup, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    clock, area, store, keeper = setup
    caplog.set_level(logging.INFO, "wlmd.housekeeping")
    hk = keeper()
    store.create("2.25.1", in_progress(STUDY, "S1"))
    hk.apply_policy()
    assert names(area) == ["a.wl.inprogress", "b.wl"]
    hk.apply_policy()  # idempotent
    assert names(area) == ["a.wl.inprogress", "b.wl"]
    store.set("2.25.1", completed())
    clock.now += 599
    hk.apply_policy()
    assert names(area) == ["a.wl.inprogress", "b.wl"], "not before the delay"
    clock.now += 1
    hk.apply_policy()
    assert names(area) == ["b.wl"]
    assert store.open_entries() == []
    lines = [r.getMessage() for r in caplog.records]
    assert f"MPPS 2.25.1 (study {STUDY}, SPS S1): entry a.wl hidden" in lines
    assert f"MPPS 2.25.1 (study {STUDY}, SPS S1): entry a.wl removed" in lines
    assert len(lines) == 2, lines
    assert "SECRET" not in caplog.text


def test_discontinued_puts_it_back(setup) -> None:  # type: ignore[no-untyped-def]
    _clock, area, store, keeper = setup
    hk = keeper(mpps_entry_policy="hide")
    store.create("2.25.2", in_progress(STUDY, "S2"))
    hk.apply_policy()
    assert names(area) == ["a.wl", "b.wl.inprogress"]
    store.set("2.25.2", completed("DISCONTINUED"))
    hk.apply_policy()
    assert names(area) == ["a.wl", "b.wl"]
    stored = store.backend.transaction(write=False)
    with stored as tx:
        assert tx.execute("SELECT entry_state FROM mpps")[0][0] == Done.RESTORED.value


def test_no_entry_or_two_entries_change_nothing(setup, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    _clock, area, store, keeper = setup
    caplog.set_level(logging.INFO, "wlmd.housekeeping")
    (area / "c.wl").write_bytes((area / "a.wl").read_bytes())  # a second entry for S1
    hk = keeper()
    store.create("2.25.3", in_progress(STUDY, "S1"))
    store.create("2.25.4", in_progress(STUDY, "S9"))
    counts = hk.apply_policy()
    assert names(area) == ["a.wl", "b.wl", "c.wl"]
    assert counts.unmatched == 2
    text = caplog.text
    assert f"MPPS 2.25.3 (study {STUDY}, SPS S1): entry left alone: 2 entries" in text
    assert "a.wl, c.wl" in text
    assert f"MPPS 2.25.4 (study {STUDY}, SPS S9): entry left alone: no entry" in text
    hk.apply_policy()
    assert names(area) == ["a.wl", "b.wl", "c.wl"] and store.open_entries() == []


def test_crash_repair_file_changed_but_not_recorded(
    setup, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    _clock, area, store, keeper = setup
    caplog.set_level(logging.INFO, "wlmd.housekeeping")
    store.create("2.25.5", in_progress(STUDY, "S1"))
    (area / "a.wl").rename(area / "a.wl.inprogress")  # the rename happened, the record did not
    keeper().apply_policy()
    (work,) = store.open_entries()
    assert (work.done, work.entry_name) == (Done.HIDDEN, "a.wl")
    assert names(area) == ["a.wl.inprogress", "b.wl"]
    assert "entry a.wl hidden (found so already)" in caplog.text


def test_completed_before_any_pass_is_hidden_then_removed(setup) -> None:  # type: ignore[no-untyped-def]
    clock, area, store, keeper = setup
    store.create("2.25.6", in_progress(STUDY, "S2"))
    store.set("2.25.6", completed())  # while the housekeeping child was down
    hk = keeper()
    hk.apply_policy()
    assert names(area) == ["a.wl", "b.wl.inprogress"]
    clock.now += 600
    hk.apply_policy()
    assert names(area) == ["a.wl"]


def test_run_purges_old_entries_and_old_mpps(setup, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    clock, area, store, keeper = setup
    caplog.set_level(logging.INFO, "wlmd.housekeeping")
    # clock.now is 2027-01-15; these are scheduled weeks before it
    make_area(area.parent, "WLMD", {"old.wl": entry("S7", "ACC7", date="20261201")})
    make_area(area.parent, "OTHER", {"old.wl": entry("S8", "ACC8", date="20261201")})
    store.create("2.25.7", in_progress(STUDY, "S7"))
    hk = keeper(mpps_entry_policy="hide", purge_after_days=30, mpps_keep=3600)
    hk.apply_policy()
    assert "old.wl.inprogress" in names(area)
    store.set("2.25.7", completed())
    counts = hk.run()
    assert counts.purged == 2 and counts.mpps_deleted == 0
    assert names(area) == ["a.wl", "b.wl"] and names(area.parent / "OTHER") == []
    clock.now += 3601
    assert hk.run().mpps_deleted == 1
    assert store.get("2.25.7") is None
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("housekeeping")]
    assert len(summary) == 2
    assert "2 entries past --purge-after-days removed; 0 final MPPS deleted" in summary[0]
    assert "1 final MPPS deleted" in summary[1]
    assert "SECRET" not in caplog.text


def test_leave_touches_nothing(setup) -> None:  # type: ignore[no-untyped-def]
    clock, area, store, keeper = setup
    store.create("2.25.8", in_progress(STUDY, "S1"))
    store.set("2.25.8", completed())
    clock.now += 10**6
    keeper(mpps_entry_policy="leave").run()
    assert names(area) == ["a.wl", "b.wl"]


def test_a_failed_change_is_retried_with_backoff(setup, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    clock, area, store, keeper = setup
    caplog.set_level(logging.INFO, "wlmd.housekeeping")
    hk = keeper()
    store.create("2.25.9", in_progress(STUDY, "S1"))
    (area / "lockfile").unlink()  # the write lock cannot be taken
    assert hk.apply_policy().failed == 1
    assert hk.apply_policy().failed == 0, "resting: not tried on every pass"
    (area / "lockfile").touch()
    clock.now += 1
    hk.apply_policy()
    assert names(area) == ["a.wl.inprogress", "b.wl"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "MPPS 2.25.9: entry not hidden: cannot open" in warnings[0]
