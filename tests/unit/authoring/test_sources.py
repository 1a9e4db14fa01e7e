"""Inputs: DICOM JSON (PS3.18 F.2), dcmdump/dump2dcm text, DICOM files.

Dump text is checked against DCMTK itself where it is installed: ``dump2dcm``
turns the same text into a file, and both data sets must be equal.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.helpers.dcmtk import dcmtk_tool
from tests.helpers.required import need
from tests.helpers.worklists import complete_entry, write_wl
from wlmd.authoring import compose, sources
from wlmd.authoring.errors import BadInput
from wlmd.authoring.verdict import judge_bytes

DUMP = """\
# a worklist entry in dump2dcm's input format
(0008,0005) CS [ISO_IR 100]
(0008,0050) SH [ACC77]                                  #   6, 1 AccessionNumber
(0010,0010) PN [M\xdcLLER^J\xd6RG]
(0010,0020) LO  PID77
(0020,000d) UI  1.2.826.0.1.3680043.10.1234.77
(0032,1060) LO [CT HEAD]
(0040,0100) SQ (Sequence with explicit length #=1)
  (fffe,e000) na (Item with explicit length #=7)
    (0008,0060) CS [CT]
    (0040,0001) AE [CT01\\CT02]
    (0040,0002) DA [20261202]
    (0040,0003) TM [0930]
    (0040,0007) LO [CT HEAD PLAIN]
    (0040,0009) SH [SPS77]
    (0040,0008) SQ
    (fffe,e000) -
    (0008,0100) SH [C1]
    (0008,0102) SH [99X]
    (fffe,e00d) -
    (fffe,e0dd) -
  (fffe,e00d) na (ItemDelimitationItem for re-encoding)
(fffe,e0dd) na (SequenceDelimitationItem for re-encoding)
(0010,1010) AS (no value available)
(0028,0010) US 512
"""
#: wlmctl also takes a keyword instead of (gggg,eeee); dump2dcm does not.
DUMP_WITH_KEYWORD = DUMP + "RequestedProcedureID [RP77]\n"


def test_dump_text() -> None:
    ds = sources.from_dump(DUMP_WITH_KEYWORD.encode("latin-1"))
    assert str(ds.PatientName) == "MÜLLER^JÖRG"
    step = ds.ScheduledProcedureStepSequence[0]
    assert list(step.ScheduledStationAETitle) == ["CT01", "CT02"]
    assert step.ScheduledProtocolCodeSequence[0].CodingSchemeDesignator == "99X"
    assert ds.Rows == 512 and ds.RequestedProcedureID == "RP77"
    assert ds.PatientAge in (None, "")
    assert judge_bytes(compose.encode(compose.prepared(ds)))[1] is None


def test_dump_text_equals_dump2dcm(tmp_path: Path) -> None:
    dump2dcm = dcmtk_tool("dump2dcm")
    need(dump2dcm, "DCMTK's dump2dcm is not installed")
    assert dump2dcm is not None
    (tmp_path / "e.dump").write_bytes(DUMP.encode("latin-1"))
    done = subprocess.run(
        [dump2dcm, str(tmp_path / "e.dump"), str(tmp_path / "e.dcm")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and "E:" not in done.stderr, done.stderr
    theirs = dcmread(tmp_path / "e.dcm")
    ours = sources.from_dump(DUMP.encode("latin-1"))
    assert ours == compose.prepared(theirs)


def test_dump_text_in_utf8_without_charset() -> None:
    ds = sources.from_dump("(0010,0010) PN [山田^太郎]\n".encode())
    assert str(ds.PatientName) == "山田^太郎"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("(0010,0010 PN [X]", "line 1: not an element"),
        ("(0040,0100) SQ\n(fffe,e000) -\n", "not closed"),
        ("(fffe,e000) -\n", "outside a sequence"),
        ("NoSuchKeyword [X]", "unknown attribute"),
        ("(0028,0010) US many", "bad US value"),
        ("(0008,0016) UI =NoSuchUID", "unknown UID name"),
    ],
)
def test_bad_dump_text(text: str, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        sources.from_dump(text.encode())


def test_json_object_and_array() -> None:
    one = complete_entry(PatientName="DOE^JANE").to_json_dict()
    [ds] = sources.from_json(json.dumps(one))
    assert str(ds.PatientName) == "DOE^JANE"
    two = sources.from_json(json.dumps([one, one]))
    assert len(two) == 2
    assert judge_bytes(compose.encode(compose.prepared(ds)))[1] is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1]", "JSON item 1 is not a DICOM JSON object"),
        ('{"00100010": {"vr": "PN", "Value": 5}}', "not a DICOM JSON data set"),
        ('{"7FE00010": {"vr": "OB", "BulkDataURI": "http://x/y"}}', "BulkDataURI"),
    ],
)
def test_bad_json(text: str, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        for ds in sources.from_json(text):
            compose.encode(compose.prepared(ds))


def test_dicom_file_values_are_decoded(tmp_path: Path) -> None:
    path = write_wl(tmp_path / "x.wl", complete_entry(PatientName="MÜLLER^JÖRG"))
    ds = sources.from_dicom(path.read_bytes())
    assert str(ds.PatientName) == "MÜLLER^JÖRG"
    with pytest.raises(BadInput):
        sources.from_dicom(b"\x08\x00")
