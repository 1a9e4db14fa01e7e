"""The MPPS worklist entry policy over TCP: a modality's N-CREATE/N-SET (pynetdicom),
another station's DCMTK findscu, real files and the real housekeeping child."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from tests.helpers import servers
from tests.helpers.dcmtk import findscu
from tests.helpers.mpps import completed, in_progress
from tests.helpers.ups import backend_for
from tests.helpers.worklists import complete_entry, make_area, query
from wlmd.state.mpps import MppsRepository

TIMEOUT = 10
STUDY = "1.2.826.0.1.3680043.8.498.700"


def entry(sps: str, patient: str):  # type: ignore[no-untyped-def]
    return complete_entry(
        StudyInstanceUID=STUDY,
        ScheduledProcedureStepID=sps,
        AccessionNumber="ACC" + sps,
        PatientID=patient,
        PatientName="HIDDEN^PATIENT",
    )


@pytest.fixture
def server(tmp_path: Path, wlmd_available: None) -> Iterator[tuple[servers.Server, Path]]:
    area = make_area(
        tmp_path / "data",
        "WLMD",
        {"a.wl": entry("S1", "P1"), "b.wl": entry("S2", "P2"), "c.wl": entry("S3", "P3")},
    )
    options = [
        "-v",
        "--mpps-ae-title",
        "WLMD",
        "--state-store",
        str(tmp_path / "s.db"),
        "--mpps-entry-policy",
        "hide-remove",
        "--mpps-area",
        "WLMD",
        "--mpps-remove-delay",
        "1",
    ]
    with servers.wlmd(tmp_path / "data", options) as running:
        yield running, area


def modality(port: int) -> Association:
    ae = AE(ae_title="CT01")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = TIMEOUT
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate("127.0.0.1", port, ae_title="WLMD")
    assert assoc.is_established, "MPPS association not established"
    return assoc


def seen_by_other_station(port: int) -> list[str]:
    result = findscu(port, query(PatientID=None), aec="WLMD", aet="CT02")
    assert result.final_status == 0, result.describe()
    return sorted(str(ds.PatientID) for ds in result.datasets)


def wait_for(area: Path, wanted: list[str], timeout: float = 10.0) -> None:
    """Bounded poll of the area's file state (the housekeeping child's outcome)."""
    deadline = time.monotonic() + timeout
    while True:
        found = sorted(p.name for p in area.iterdir() if p.name != "lockfile")
        if found == wanted:
            return
        assert time.monotonic() < deadline, f"area holds {found}, not {wanted}"
        time.sleep(0.05)


def send(port: int, uid: str, sps: str, end: str | None) -> None:
    assoc = modality(port)
    try:
        status, _ = assoc.send_n_create(
            in_progress(STUDY, sps), ModalityPerformedProcedureStep, uid
        )
        assert status.Status == 0x0000
        if end:
            status, _ = assoc.send_n_set(completed(end), ModalityPerformedProcedureStep, uid)
            assert status.Status == 0x0000
    finally:
        assoc.release()


def test_hidden_while_in_progress_back_when_discontinued(
    server: tuple[servers.Server, Path],
) -> None:
    running, area = server
    assert seen_by_other_station(running.port) == ["P1", "P2", "P3"]
    send(running.port, "2.25.701", "S1", None)
    wait_for(area, ["a.wl.inprogress", "b.wl", "c.wl"])
    assert seen_by_other_station(running.port) == ["P2", "P3"]
    assoc = modality(running.port)
    try:
        status, _ = assoc.send_n_set(
            completed("DISCONTINUED"), ModalityPerformedProcedureStep, "2.25.701"
        )
        assert status.Status == 0x0000
    finally:
        assoc.release()
    wait_for(area, ["a.wl", "b.wl", "c.wl"])
    assert seen_by_other_station(running.port) == ["P1", "P2", "P3"]
    log = running.log()
    assert f"MPPS 2.25.701 (study {STUDY}, SPS S1): entry a.wl hidden" in log
    assert f"MPPS 2.25.701 (study {STUDY}, SPS S1): entry a.wl put back" in log
    assert "HIDDEN^PATIENT" not in log, "no patient data at info level"


def test_removed_after_completed_and_the_delay(server: tuple[servers.Server, Path]) -> None:
    running, area = server
    send(running.port, "2.25.702", "S2", "COMPLETED")
    wait_for(area, ["a.wl", "c.wl"])
    assert seen_by_other_station(running.port) == ["P1", "P3"]
    assert f"MPPS 2.25.702 (study {STUDY}, SPS S2): entry b.wl removed" in running.log()


def test_no_entry_changes_nothing_and_says_why(server: tuple[servers.Server, Path]) -> None:
    running, area = server
    send(running.port, "2.25.703", "S9", None)
    line = f"MPPS 2.25.703 (study {STUDY}, SPS S9): entry left alone: no entry"
    deadline = time.monotonic() + 10
    while line not in running.log():  # bounded poll of the log (the child's outcome)
        assert time.monotonic() < deadline, running.describe()
        time.sleep(0.05)
    wait_for(area, ["a.wl", "b.wl", "c.wl"])


def test_an_mpps_committed_while_wlmd_was_down_is_applied_at_start(
    tmp_path: Path, wlmd_available: None
) -> None:
    area = make_area(tmp_path / "data", "WLMD", {"a.wl": entry("S1", "P1")})
    state = tmp_path / "s.db"
    store = MppsRepository(backend_for(str(state)))
    assert store.create("2.25.704", in_progress(STUDY, "S1")).status == 0
    store.close()
    options = ["-v", "--mpps-ae-title", "WLMD", "--state-store", str(state)]
    options += ["--mpps-entry-policy", "hide", "--mpps-area", "WLMD"]
    with servers.wlmd(tmp_path / "data", options) as running:
        wait_for(area, ["a.wl.inprogress"])
        assert seen_by_other_station(running.port) == []
    log = running.log()
    assert f"MPPS 2.25.704 (study {STUDY}, SPS S1): entry a.wl hidden" in log
    # the first scheduled run (at start) made the change: its counts line says so
    assert "housekeeping: MPPS entries: 1 hidden, 0 unmatched; 0 entries past" in log, log
    assert "HIDDEN^PATIENT" not in log


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--mpps-entry-policy", "hide"], "--mpps-entry-policy hide needs --mpps-area"),
        (
            ["--mpps-entry-policy", "remove", "--mpps-area", "WLMD", "--mpps-keep", "60"],
            "--mpps-keep 60 is shorter than --mpps-remove-delay 3600",
        ),
        (["--mpps-entry-policy", "hide", "--mpps-area", "NOPE"], "--mpps-area NOPE: no storage"),
        (["--mpps-entry-policy", "sometimes"], "--mpps-entry-policy"),
    ],
)
def test_bad_policy_settings_stop_start_up_with_one_line(
    tmp_path: Path, wlmd_available: None, extra: list[str], message: str
) -> None:
    make_area(tmp_path / "data", "WLMD", {})
    args = ["--mpps-ae-title", "WLMD", "--state-store", str(tmp_path / "s.db"), *extra]
    args += ["--listen-address", "127.0.0.1", "-dfp", str(tmp_path / "data")]
    proc = servers.run_wlmd_cli([*args, str(servers.free_port())])
    assert proc.returncode != 0, proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], proc.stderr


def test_wlmctl_purge_housekeeping_runs_the_same_on_demand(tmp_path: Path) -> None:
    data = tmp_path / "data"
    old = complete_entry(ScheduledProcedureStepStartDate="20200101", PatientName="OLD^ONE")
    area = make_area(data, "WLMD", {"a.wl": entry("S1", "P1"), "old.wl": old})
    state = tmp_path / "s.db"
    store = MppsRepository(backend_for(str(state)), clock=lambda: time.time() - 7200)
    assert store.create("2.25.705", in_progress(STUDY, "S1")).status == 0
    assert store.set("2.25.705", completed()).status == 0  # two hours ago
    store.close()
    conf = tmp_path / "wlmd.conf"
    conf.write_text(
        f"data-files-path = {data}\nmpps-ae-title = WLMD\nstate-store = {state}\n"
        "mpps-entry-policy = remove\nmpps-area = WLMD\npurge-after-days = 30\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(servers.REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "wlmd.ctl", "purge", "--housekeeping", "--config", str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in area.iterdir()) == ["lockfile"]
    assert f"wlmctl: MPPS 2.25.705 (study {STUDY}, SPS S1): entry a.wl removed" in proc.stderr
    assert "1 removed, 0 unmatched; 1 entries past --purge-after-days removed" in proc.stderr
    assert "OLD^ONE" not in proc.stderr and "HIDDEN^PATIENT" not in proc.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "wlmd.ctl", "purge", "--housekeeping", "--config", str(area)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
