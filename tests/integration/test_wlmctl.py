"""wlmctl against a real wlmd (and wlmscpfs): entries it writes are served, at once.

Everything runs as processes: ``python -m wlmd.ctl`` (the ``wlmctl`` console
script's code), wlmd over TCP on 127.0.0.1, DCMTK's findscu (and wlmscpfs
in its network namespace). While two wlmctl processes write, findscu asks
again and again for an entry they never touch: every answer must hold it,
whole (the read lock against the writers' write locks).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from tests.helpers import servers
from tests.helpers.badfiles import make_bad_area
from tests.helpers.dcmtk import ClientResult, findscu, require_dcmtk
from tests.helpers.servers import REPO_ROOT, Server
from tests.helpers.worklists import complete_entry, make_area, query, write_wl

AREA = "WLMD"
SUCCESS, PENDING = 0x0000, 0xFF00
#: Bounds of the query loop that runs while writers write.
LOOP_QUERIES, LOOP_SECONDS = 60, 40.0


def wlmctl(root: Path, *args: str, stdin: str | None = None, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "wlmd.ctl", "-dfp", str(root), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    make_area(data, AREA, {"stable.wl": complete_entry(PatientID="STABLE", AccessionNumber="S1")})
    return data


@pytest.fixture
def server(root: Path, tmp_path: Path, wlmd_available: None) -> Iterator[Server]:
    require_dcmtk("findscu")
    with servers.wlmd(root, log_dir=tmp_path) as running:
        yield running


def find(server: Server, **keys: object) -> ClientResult:
    identifier = query(
        PatientName=None,
        PatientID=keys.pop("PatientID", None),
        AccessionNumber=keys.pop("AccessionNumber", None),
        sps={"Modality": None, "ScheduledStationAETitle": None,
             "ScheduledProcedureStepStartDate": None, "ScheduledProcedureStepID": None},
    )  # fmt: skip
    return findscu(server.port, identifier, aec=AREA, wrapper=server.client_wrapper)


def answers(result: ClientResult) -> list[Dataset]:
    assert result.final_status == SUCCESS, result.describe()
    return result.datasets


def test_add_from_flags_is_served(root: Path, server: Server) -> None:
    done = wlmctl(
        root, "add", "--patient-id", "F1", "--patient-name", "DOE^JANE", "--modality", "MR",
        "--station-aet", "MR01", "--start", "2026-12-02 09:30", "--procedure", "MR KNEE",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"added order-[0-9a-f]{32}\.wl generated .*\n", done.stdout)
    [found] = answers(find(server, PatientID="F1"))
    step = found.ScheduledProcedureStepSequence[0]
    assert (str(found.PatientName), step.Modality, step.ScheduledStationAETitle) == (
        "DOE^JANE",
        "MR",
        "MR01",
    )
    assert step.ScheduledProcedureStepStartDate == "20261202"
    assert found.AccessionNumber and step.ScheduledProcedureStepID  # generated


def test_add_from_json_and_dump_and_repeat(root: Path, server: Server, tmp_path: Path) -> None:
    order = complete_entry(PatientID="J1", AccessionNumber="JA1", StudyInstanceUID="1.2.3.1")
    (tmp_path / "order.json").write_text(json.dumps(order.to_json_dict()))
    first = wlmctl(root, "add", "--json", str(tmp_path / "order.json"))
    assert first.returncode == 0, first.stderr
    [outcome] = json.loads(first.stdout)
    assert outcome["replaced"] is False and outcome["generated"] == {}
    # the same order again, moved to another station: replaced, not duplicated
    again = wlmctl(root, "add", "--json", str(tmp_path / "order.json"), "--station-aet", "CT09")
    assert json.loads(again.stdout)[0] == {**outcome, "replaced": True}
    [found] = answers(find(server, PatientID="J1"))
    assert found.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT09"

    dump = (
        "(0008,0050) SH [DA1]\n(0010,0010) PN [DUMP^DORA]\n(0010,0020) LO [D1]\n"
        "(0032,1060) LO [XR CHEST]\n(0040,0100) SQ\n(fffe,e000) -\n(0008,0060) CS [CR]\n"
        "(0040,0001) AE [CR01]\n(0040,0002) DA [20261203]\n(0040,0003) TM [1015]\n"
        "(0040,0007) LO [XR CHEST PA]\n(fffe,e00d) -\n(fffe,e0dd) -\n"
    )
    from_stdin = wlmctl(root, "add", "-", stdin=dump)
    assert from_stdin.returncode == 0, from_stdin.stderr
    [found] = answers(find(server, PatientID="D1"))
    assert str(found.PatientName) == "DUMP^DORA" and found.AccessionNumber == "DA1"
    assert found.ScheduledProcedureStepSequence[0].Modality == "CR"


def test_refused_entry_is_never_written(root: Path, server: Server) -> None:
    done = wlmctl(root, "add", "--patient-id", "R1", "--modality", "CT", "--station-aet", "X",
                  "--start", "2026-12-02 10:00", "--procedure", "CT")  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "wlmctl: (flags): refused: incomplete worklist file rejected: "
        "PatientName is missing or empty\n"
    )
    assert answers(find(server, PatientID="R1")) == []
    assert sorted(os.listdir(root / AREA)) == ["lockfile", "stable.wl"]


def test_rm_and_purge(root: Path, server: Server) -> None:
    for n, date in enumerate(["20200101", "20200102", "20991231"]):
        done = wlmctl(root, "add", "--patient-id", "P", "--patient-name", "X^Y",
                      "--modality", "CT", "--station-aet", "CT1", "--start", date,
                      "--set", "ScheduledProcedureStepStartTime=0800",
                      "--procedure", "CT", "--accession", f"RM{n}")  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert len(answers(find(server, PatientID="P"))) == 3
    purged = wlmctl(root, "purge", "--before", "2021-01-01")
    assert purged.returncode == 0 and purged.stdout.count("removed ") == 2
    [left] = answers(find(server, PatientID="P"))
    assert left.AccessionNumber == "RM2"
    removed = wlmctl(root, "rm", "--accession", "RM2")
    assert removed.returncode == 0 and removed.stdout.startswith("removed order-")
    assert answers(find(server, PatientID="P")) == []
    assert answers(find(server, PatientID="STABLE")) != []
    again = wlmctl(root, "rm", "--accession", "RM2")
    assert (again.returncode, again.stderr) == (1, "wlmctl: no entry matches\n")


def test_list_json_and_show(root: Path) -> None:
    listed = wlmctl(root, "list", "--json", "--patient-id", "STABLE")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["file"] == "stable.wl" and row["accession"] == "S1"
    assert row["modality"] == "CT" and row["date"] == "20240115"
    table = wlmctl(root, "list").stdout.splitlines()
    assert table[0].split()[:3] == ["FILE", "PATIENT", "ID"] and table[1].startswith("stable.wl")
    shown = wlmctl(root, "show", "--json", "stable.wl")
    assert json.loads(shown.stdout)["00100020"]["Value"] == ["STABLE"]
    assert "PatientID [STABLE]" in wlmctl(root, "show", "stable.wl").stdout


def test_exit_statuses(root: Path, tmp_path: Path) -> None:
    usage = wlmctl(root, "list", "--no-such-option")
    assert usage.returncode == 2 and usage.stderr.startswith("wlmctl: unrecognized arguments")
    assert len(usage.stderr.splitlines()) == 1
    missing = wlmctl(root, "-a", "NOSUCH", "list")
    assert missing.returncode == 3 and missing.stderr.startswith("wlmctl: no storage area")
    assert wlmctl(root, "show", "nothing.wl").returncode == 1
    assert wlmctl(root, "validate").returncode == 0
    bad = tmp_path / "bad.wl"
    write_wl(bad, complete_entry(PatientID=""))
    checked = wlmctl(root, "validate", str(bad))
    assert checked.returncode == 1
    assert checked.stdout == (
        f"{bad}: skipped: incomplete worklist file rejected: PatientID is missing or empty\n"
    )


def test_validate_says_what_the_server_says(tmp_path: Path, wlmd_available: None) -> None:
    """Every crafted bad file: wlmctl validate's reason is the one wlmd logs."""
    require_dcmtk("findscu")
    root = tmp_path / "bad"
    expected = make_bad_area(root / AREA)
    checked = wlmctl(root, "validate", "--area", AREA)
    assert checked.returncode == 1
    ours = dict(line.split(": skipped: ", 1) for line in checked.stdout.splitlines())
    assert set(ours) == set(expected)
    with servers.wlmd(root, log_dir=tmp_path) as server:
        answers(find(server))  # loaded and queried: every bad file has been logged
        log = server.log()
    theirs = dict(re.findall(r"worklist file \S+/([^/ ]+\.wl) skipped: (.*)", log))
    assert theirs == ours


def test_lock_timeout_names_the_holder(root: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl,os,sys; fd=os.open(sys.argv[1], os.O_RDWR); "
         "fcntl.lockf(fd, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
         str(root / AREA / "lockfile")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        done = wlmctl(root, "--lock-timeout", "0.5", "rm", "stable.wl")
        assert done.returncode == 3
        assert f"is locked by pid {holder.pid}" in done.stderr
        assert "within 0.5 s" in done.stderr
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=10)
    assert (root / AREA / "stable.wl").exists()


def _import_dir(directory: Path, prefix: str, count: int) -> None:
    directory.mkdir()
    for n in range(count):
        ds = complete_entry(PatientID=f"{prefix}{n}", AccessionNumber=f"{prefix}{n}")
        del ds.StudyInstanceUID  # generated: two writers draw UIDs at once
        (directory / f"{n:04d}.json").write_text(json.dumps(ds.to_json_dict()))


def test_writers_while_queries_run(root: Path, server: Server, tmp_path: Path) -> None:
    """Two wlmctl imports at once, one replacing 300 entries, one adding 300, queries all
    along: the untouched entry is in every answer, every answer holds all 300 replaced
    entries (a replacement is never seen half done), and the server skips nothing."""
    count = 300
    _import_dir(tmp_path / "a", "A", count)
    _import_dir(tmp_path / "b", "B", count)
    first = wlmctl(root, "import", "-q", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    writers = [
        subprocess.Popen(
            [sys.executable, "-m", "wlmd.ctl", "-dfp", str(root), "import", "-q", str(d)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for d in (tmp_path / "a", tmp_path / "b")
    ]
    results: list[ClientResult] = []
    everything: list[ClientResult] = []
    stop = threading.Event()

    def query_loop() -> None:
        deadline = time.monotonic() + LOOP_SECONDS
        while len(results) < LOOP_QUERIES and time.monotonic() < deadline:
            results.append(find(server, PatientID="STABLE"))
            if len(results) % 3 == 0:
                everything.append(find(server))
            if stop.is_set() and len(results) >= 10:
                return

    loop = threading.Thread(target=query_loop)
    loop.start()
    outputs = [w.communicate(timeout=120) for w in writers]
    stop.set()
    loop.join(timeout=LOOP_SECONDS + 30)
    replaced, added = outputs[0][1], outputs[1][1]
    assert writers[0].returncode == 0 and f"{count} replaced" in replaced, replaced
    assert writers[1].returncode == 0 and f"{count} added" in added, added
    assert len(results) >= 10 and len(everything) >= 3
    for result in results:
        [found] = answers(result)
        assert found.AccessionNumber == "S1" and str(found.PatientName) == "DOE^JOHN"
        assert found.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "STATION1"
    added_seen = []
    for result in everything:
        ids = [str(found.PatientID) for found in answers(result)]
        assert sum(1 for i in ids if i.startswith("A")) == count, "a replaced entry was missing"
        added_seen.append(sum(1 for i in ids if i.startswith("B")))
    assert added_seen == sorted(added_seen)
    assert "skipped" not in server.log(), "the server saw a file half written"
    names = os.listdir(root / AREA)
    assert not [n for n in names if not n.endswith(".wl") and n != "lockfile"], "temp files"
    assert len(names) == 2 * count + 2
    assert len(answers(find(server))) == 2 * count + 1


def test_wlmscpfs_serves_what_wlmctl_wrote(root: Path, tmp_path: Path) -> None:
    require_dcmtk("wlmscpfs", "findscu")
    done = wlmctl(root, "add", "--patient-id", "W1", "--patient-name", "MÜLLER^JÖRG",
                  "--modality", "US", "--station-aet", "US01", "--start", "2026-12-02 11:00",
                  "--procedure", "US ABDOMEN")  # fmt: skip
    assert done.returncode == 0, done.stderr
    with servers.wlmscpfs(root, log_dir=tmp_path) as server:
        [found] = answers(find(server, PatientID="W1"))
    assert found.ScheduledProcedureStepSequence[0].Modality == "US"
    assert found.PatientName.original_string == "MÜLLER^JÖRG".encode("latin-1")
