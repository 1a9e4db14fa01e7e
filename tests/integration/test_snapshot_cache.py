"""A restart with --snapshot-cache: the files always win over the cache.

Real wlmd processes one after another on the same files, queried with DCMTK's
findscu: the first parses everything and writes the cache (its child logs
"snapshot cache ... written"), the files are changed while no wlmd runs, and
the next one must answer exactly what the files hold — what a wlmd without a
cache answers — having parsed only what changed. A cache that is truncated,
corrupt, from another version or for another data files path is logged with
its reason and everything is parsed.

Files must be older than the cache's "racy" margin (3 s, see
``wlmd.worklist.area.RACY_MARGIN_NS``) when the first wlmd scans them to be
trusted afterwards; the fixtures age them once (bounded wait: no signal exists
for the passing of time).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import procs, servers
from tests.helpers.dcmtk import findscu, require_dcmtk
from tests.helpers.required import need
from tests.helpers.worklists import complete_entry, make_area, write_wl
from wlmd.worklist.area import RACY_MARGIN_NS
from wlmd.worklist.snapshotfile import MAGIC

AREA = "WLMD"
FILES = 20
KEYS = ["PatientID", "PatientName", "AccessionNumber"]
NO_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]


def _populate(root: Path) -> Path:
    entries = {
        f"k{k:02d}.wl": complete_entry(
            PatientID=f"P{k:02d}", PatientName=f"Cache^Test{k}", AccessionNumber=f"A{k:02d}"
        )
        for k in range(FILES)
    }
    return make_area(root, AREA, entries)


def _age(directory: Path) -> None:
    """Wait until every file's ctime is older than the racy margin (bounded)."""
    newest = max(p.stat().st_ctime_ns for p in directory.iterdir())
    wait = (newest + RACY_MARGIN_NS) / 1e9 + 0.2 - time.time()
    assert wait < 10, "clock trouble"
    if wait > 0:
        time.sleep(wait)  # letting files age, not waiting for an event


def _answer(server: servers.Server) -> list[tuple[str, str, str]]:
    result = findscu(server.port, aec=AREA, keys=KEYS, timeout=60)
    assert result.final_status == 0x0000, result.describe()
    return sorted(
        (str(ds.PatientID), str(ds.PatientName), str(ds.AccessionNumber)) for ds in result.datasets
    )


def _options(cache: Path) -> list[str]:
    return ["-v", "--snapshot-cache", str(cache)]


def _written(server: servers.Server) -> None:
    procs.wait_for(lambda: "written:" in server.log(), "the snapshot cache writer", timeout=30)


def _prime(root: Path, cache: Path, logs: Path, wrapper: list[str] | None = None) -> None:
    with servers.wlmd(root, _options(cache), log_dir=logs, wrapper=wrapper or []) as server:
        _answer(server)
        _written(server)
    assert cache.is_file()


def _reparsed(log: str) -> int:
    for line in log.splitlines():
        if "worklist files parsed again" in line:
            return int(line.split("snapshot cache ", 1)[1].split(": ", 1)[1].split(" of ")[0])
    raise AssertionError(f"no 'parsed again' line in:\n{log}")


def _no_dac(probe: Path) -> list[str]:
    """A prefix under which root cannot read ``probe`` (mode 000)."""
    if os.geteuid() != 0:
        return []
    proc = subprocess.run(
        [*NO_DAC, "head", "-c", "1", str(probe)],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    need(
        proc.returncode != 0 and "Permission denied" in proc.stderr,
        f"setpriv cannot drop CAP_DAC_OVERRIDE here: {proc.stderr.strip()}",
    )
    return NO_DAC


def test_changes_made_while_stopped_are_answered(tmp_path: Path) -> None:
    require_dcmtk("findscu")
    root = tmp_path / "data"
    area = _populate(root)
    cache = tmp_path / "state" / "worklist.snapshot"
    cache.parent.mkdir()
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    probe.chmod(0)
    wrapper = _no_dac(probe)
    _age(area)
    _prime(root, cache, tmp_path / "logs1", wrapper)

    # While no wlmd runs: same size and same mtime, removed, replaced by rename,
    # added, made unreadable.
    same = area / "k01.wl"
    before = same.stat()
    data = same.read_bytes()
    changed = data.replace(b"P01", b"Q01")
    assert len(changed) == len(data) and changed != data
    same.write_bytes(changed)
    os.utime(same, ns=(before.st_atime_ns, before.st_mtime_ns))
    (area / "k02.wl").unlink()
    write_wl(area / "k03.tmp", complete_entry(PatientID="RENAMED", AccessionNumber="R3"))
    os.rename(area / "k03.tmp", area / "k03.wl")
    write_wl(area / "new.wl", complete_entry(PatientID="NEW", AccessionNumber="N1"))
    (area / "k04.wl").chmod(0)

    with servers.wlmd(root, _options(cache), log_dir=tmp_path / "logs2", wrapper=wrapper) as s:
        restarted = _answer(s)
        log = s.log()
    with servers.wlmd(root, ["--snapshot-cache", "none"], log_dir=tmp_path / "logs3") as s:
        fresh = _answer(s)  # as root without the wrapper k04 is readable: drop it below
    fresh = [row for row in fresh if row[0] != "P04"]
    assert restarted == fresh
    ids = [row[0] for row in restarted]
    assert "Q01" in ids and "P01" not in ids
    assert "P02" not in ids and "RENAMED" in ids and "NEW" in ids
    assert ("P04" in ids) is (not wrapper)
    assert _reparsed(log) == 4, log  # k01, k03, k04, new.wl
    if wrapper:
        assert f"worklist file {area / 'k04.wl'} skipped: " in log, log


@pytest.fixture(scope="module")
def primed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, list]]:
    """An aged area, its good cache, and the answer from the files."""
    require_dcmtk("findscu")
    base = tmp_path_factory.mktemp("primed")
    root = base / "data"
    _age(_populate(root))
    cache = base / "worklist.snapshot"
    _prime(root, cache, base / "logs")
    expected = sorted((f"P{k:02d}", f"Cache^Test{k}", f"A{k:02d}") for k in range(FILES))
    yield root, cache, expected


def _rewrite_header(path: Path, **fields: object) -> None:
    data = path.read_bytes()
    at = len(MAGIC)
    (length,) = struct.unpack_from("<Q", data, at)
    header = json.loads(data[at + 8 : at + 8 + length])
    header.update(fields)
    encoded = json.dumps(header).encode()
    path.write_bytes(
        data[:at] + struct.pack("<Q", len(encoded)) + encoded + data[at + 8 + length :]
    )


def _corrupt(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))


DAMAGES = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]), "truncated"),
    "corrupt": (_corrupt, "checksum mismatch"),
    "garbage": (lambda p: p.write_bytes(os.urandom(4096)), "not a wlmd snapshot file"),
    "other-version": (lambda p: _rewrite_header(p, wlmd="0.0.0"), "another wlmd version"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_cache_is_logged_and_everything_parsed(
    primed: tuple[Path, Path, list], tmp_path: Path, damage: str
) -> None:
    root, good, expected = primed
    cache = tmp_path / "worklist.snapshot"
    shutil.copyfile(good, cache)
    spoil, reason = DAMAGES[damage]
    spoil(cache)
    with servers.wlmd(root, _options(cache), log_dir=tmp_path / "logs") as server:
        assert _answer(server) == expected
        _written(server)  # replaced by a good one
        log = server.log()
    assert f"snapshot cache {cache} not used: " in log and reason in log, log
    assert f"snapshot loaded: {FILES} worklist entries" in log, log
    with servers.wlmd(root, _options(cache), log_dir=tmp_path / "logs2") as server:
        assert _answer(server) == expected
        assert _reparsed(server.log()) == 0, server.log()


def test_cache_of_another_data_path_is_not_used(
    primed: tuple[Path, Path, list], tmp_path: Path
) -> None:
    root, good, _ = primed
    other = tmp_path / "other"
    shutil.copytree(root, other)
    write_wl(other / AREA / "k05.wl", complete_entry(PatientID="OTHER", AccessionNumber="O5"))
    cache = tmp_path / "worklist.snapshot"
    shutil.copyfile(good, cache)
    with servers.wlmd(other, _options(cache), log_dir=tmp_path / "logs") as server:
        answer = _answer(server)
        log = server.log()
    assert "another data files path" in log, log
    assert "OTHER" in [row[0] for row in answer] and "P05" not in [row[0] for row in answer]


def test_default_is_the_state_directory_else_none(
    primed: tuple[Path, Path, list], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _, expected = primed
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    with servers.wlmd(root, ["-v"], log_dir=tmp_path / "logs") as server:
        assert _answer(server) == expected
        assert "snapshot cache" not in server.log()
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("STATE_DIRECTORY", str(state))  # as systemd's StateDirectory=
    with servers.wlmd(root, ["-v"], log_dir=tmp_path / "logs2") as server:
        assert _answer(server) == expected
        _written(server)
    assert (state / "worklist.snapshot").is_file()
