"""``-rfp``/``-rff``: request files with placeholders, names sanitised."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.dcmtk import findscu, require_dcmtk
from tests.helpers.servers import Server
from tests.helpers.worklists import query

pytestmark = pytest.mark.dcmtk


@pytest.fixture()
def request_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # a deep directory, so an escaping "../../x" would still land inside the tmp tree
    path = tmp_path_factory.mktemp("rfp") / "a" / "b" / "requests"
    path.mkdir(parents=True)
    return path


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_request_file_placeholders(start_wlmd: Callable[..., Server], request_dir: Path) -> None:
    require_dcmtk("findscu")
    server = start_wlmd("-rfp", str(request_dir), "-rff", "#a_#c_#i_#p_#t.dump")
    result = findscu(
        server.port, query(PatientID="IA1", PatientName=None), aec="WLMD", aet="CALLER"
    )
    assert result.final_status == 0x0000, result.describe()
    files = sorted(request_dir.iterdir())
    assert len(files) == 1, files
    name = files[0].name
    match = re.fullmatch(r"CALLER_WLMD_(\d+)_IA1_(\d{20})\.dump", name)
    assert match, name
    assert int(match.group(1)) > 0
    text = files[0].read_text("latin-1")
    assert "(0010,0020)" in text and "IA1" in text, text  # dcmdump format, raw request


def test_request_file_patient_id_cannot_escape(
    start_wlmd: Callable[..., Server], request_dir: Path
) -> None:
    require_dcmtk("findscu")
    server = start_wlmd("-rfp", str(request_dir), "-rff", "#p.dump")
    watch_root = request_dir.parents[2]
    before = _all_files(watch_root)
    result = findscu(server.port, query(PatientID="../../etc/x", PatientName=None), aec="WLMD")
    assert result.final is not None, result.describe()
    new = _all_files(watch_root) - before
    assert new, "no request file was written"
    for path in new:
        assert path.parent == request_dir, f"request file escaped: {path}"
        assert os.sep not in path.name
    assert not (request_dir.parent.parent / "etc").exists()
