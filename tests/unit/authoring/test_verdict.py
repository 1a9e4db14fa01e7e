"""Authoring refuses exactly what the server skips, with the server's words.

For every skip reason a crafted file (tests/helpers/badfiles.py) is read by
the server's storage area code (:class:`StorageArea`, whose warning line
carries the reason) and judged by :func:`judge_file`: the two must agree
word for word. Entries given as data sets must be refused by
:meth:`AreaEditor.put` with that same reason, and leave nothing behind.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from tests.helpers.badfiles import CONTENT_CASES, SERVED_VARIANTS, make_bad_area
from tests.helpers.worklists import complete_entry, write_wl
from wlmd.authoring.compose import Generation
from wlmd.authoring.editor import AreaEditor
from wlmd.authoring.errors import EntryRejected
from wlmd.authoring.verdict import judge_bytes, judge_file
from wlmd.worklist.area import StorageArea

NOTHING_GENERATED = Generation(False, False, False, False)


def server_reasons(area: Path, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """What the server logs for each skipped file of ``area`` (name -> reason)."""
    caplog.set_level(logging.WARNING, logger="wlmd.worklist.store")
    storage = StorageArea(str(area), file_reject=True)
    with storage.read_locked():
        storage.refresh()
    reasons = {}
    for record in caplog.records:
        path, sep, reason = record.getMessage().partition(" skipped: ")
        if sep:
            reasons[os.path.basename(path.removeprefix("worklist file "))] = reason
    return reasons


def test_every_reason_is_the_servers(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    area = tmp_path / "WLMD"
    expected = make_bad_area(area)
    server = server_reasons(area, caplog)
    assert set(server) == set(expected), "each crafted file must be skipped by the server"
    for name, start in expected.items():
        _entry, ours = judge_file(str(area / name), name, str(area))
        assert ours == server[name], name
        assert ours.startswith(start), f"{name}: {ours}"


#: Run as root, the comparison drops the capabilities that let root read a mode-000
#: file (as tests/integration/test_faults.py runs wlmd), so the reason is the one a
#: wlmd running as its own user gives.
_UNREADABLE = """
import logging, os, sys
from wlmd.authoring.verdict import judge_file
from wlmd.worklist.area import StorageArea
area = sys.argv[1]
seen = []
class Keep(logging.Handler):
    def emit(self, record):
        seen.append(record.getMessage())
logging.getLogger("wlmd.worklist.store").addHandler(Keep())
storage = StorageArea(area, file_reject=True)
with storage.read_locked():
    storage.refresh()
server = [m.partition(" skipped: ")[2] for m in seen if "secret.wl skipped: " in m]
print(repr((judge_file(os.path.join(area, "secret.wl"))[1], server)))
"""


def test_unreadable_file_reason(tmp_path: Path) -> None:
    import subprocess
    import sys

    area = tmp_path / "WLMD"
    area.mkdir()
    (area / "lockfile").touch()
    write_wl(area / "secret.wl", complete_entry())
    (area / "secret.wl").chmod(0)
    drop = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"]
    prefix = drop if os.geteuid() == 0 else []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    result = subprocess.run(
        [*prefix, sys.executable, "-c", _UNREADABLE, str(area)],
        capture_output=True, text=True, timeout=60, env=env, check=True,
    )  # fmt: skip
    ours, server = eval(result.stdout.strip())
    assert server == [ours], result.stdout
    assert "ermission" in ours or "cannot" in ours, ours


@pytest.mark.parametrize("case", sorted(CONTENT_CASES))
def test_put_refuses_with_the_servers_reason(tmp_path: Path, case: str) -> None:
    area = tmp_path / "WLMD"
    area.mkdir()
    (area / "lockfile").touch()
    build, reason = CONTENT_CASES[case]
    # nothing generated: an empty RequestedProcedureID stays empty
    editor = AreaEditor(str(tmp_path), "WLMD", generation=NOTHING_GENERATED)
    with pytest.raises(EntryRejected) as refused:
        editor.put(build())
    assert refused.value.reason == reason
    assert sorted(os.listdir(area)) == ["lockfile"], "no file, not even a temporary one"


@pytest.mark.parametrize("variant", sorted(SERVED_VARIANTS))
def test_complete_variants_are_served(tmp_path: Path, variant: str) -> None:
    area = tmp_path / "WLMD"
    area.mkdir()
    (area / "lockfile").touch()
    written = AreaEditor(str(tmp_path), "WLMD").put(SERVED_VARIANTS[variant]())
    assert judge_file(str(area / written.name))[1] is None


def test_judge_bytes_is_judge_file(tmp_path: Path) -> None:
    path = write_wl(tmp_path / "x.wl", complete_entry(PatientID=""))
    assert judge_bytes(path.read_bytes())[1] == judge_file(str(path))[1]
    assert judge_bytes(write_wl(tmp_path / "y.wl", complete_entry()).read_bytes())[1] is None


@pytest.mark.parametrize(
    "keyword", ["RequestedProcedureID", "StudyInstanceUID", "ScheduledProcedureStepID"]
)
def test_generated_values_complete_an_entry(tmp_path: Path, keyword: str) -> None:
    area = tmp_path / "WLMD"
    area.mkdir()
    (area / "lockfile").touch()
    written = AreaEditor(str(tmp_path), "WLMD").put(complete_entry(**{keyword: ""}))
    assert keyword in written.generated
    assert judge_file(str(area / written.name))[1] is None
