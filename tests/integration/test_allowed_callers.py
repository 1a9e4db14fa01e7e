"""--allowed-callers over TCP: a modality only reaches its own department's storage area."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import servers
from tests.helpers.dcmtk import echoscu, findscu
from tests.helpers.worklists import complete_entry, make_area


def test_only_listed_callers_reach_a_listed_area(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_area(root, "RADIOLOGY", {"r.wl": complete_entry(PatientID="R1")})
    make_area(root, "OPEN", {"o.wl": complete_entry(PatientID="O1")})
    allow = tmp_path / "callers"
    allow.write_text("RADIOLOGY  CT01 CT02\n")
    with servers.wlmd(root, ["-v", "--allowed-callers", str(allow)]) as server:
        ok = findscu(server.port, aec="RADIOLOGY", aet="CT01", keys=["PatientID"])
        assert ok.final_status == 0x0000 and [d.PatientID for d in ok.datasets] == ["R1"]
        refused = findscu(server.port, aec="RADIOLOGY", aet="ECHO1", keys=["PatientID"])
        assert refused.association_failed, refused.describe()
        assert "Calling AE Title Not Recognized" in refused.output, refused.describe()
        assert echoscu(server.port, aec="RADIOLOGY", aet="ECHO1").returncode != 0
        anyone = findscu(server.port, aec="OPEN", aet="ECHO1", keys=["PatientID"])
        assert anyone.final_status == 0x0000 and len(anyone.datasets) == 1
        assert "may not query this storage area (--allowed-callers)" in server.log()


def test_bad_allowed_callers_file_stops_start_up(tmp_path: Path) -> None:
    allow = tmp_path / "callers"
    allow.write_text("RADIOLOGY\n")
    result = servers.run_wlmd_cli(["--allowed-callers", str(allow), "-dfp", str(tmp_path), "104"])
    assert result.returncode == 2
    assert result.stderr == (
        f"wlmd: bad --allowed-callers file: {allow}:1: no calling AE title for RADIOLOGY "
        "(an area nobody may query: remove it)\n"
    )
