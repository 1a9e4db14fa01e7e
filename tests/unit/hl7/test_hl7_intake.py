"""What Intake writes: the Specific Character Set of the file follows the values, not MSH-18
(an ASCII-only order declared UNICODE UTF-8 is written without one, PS3.3 C.12.1.1.2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from tests.helpers.hl7messages import omi, orm
from tests.helpers.worklists import make_area
from wlmd.authoring.editor import AreaEditor
from wlmd.hl7.intake import Intake


@pytest.mark.parametrize(
    ("payload", "name", "written"),
    [
        (omi(pid={5: "Doe^John"}), "Doe^John", None),  # UTF-8 declared, ASCII sent
        (orm(charset="8859/1", pid={5: "Doe^John"}), "Doe^John", None),
        (orm(charset="8859/1", encoding="latin-1", pid={5: "Müller^J"}), "Müller^J", "ISO_IR 100"),
        (omi(pid={5: "Østergård^Åse"}), "Østergård^Åse", "ISO_IR 100"),  # Latin-1 holds it
        (omi(pid={5: "Παπαδόπουλος^Ελένη"}), "Παπαδόπουλος^Ελένη", "ISO_IR 192"),
        (orm(), "Doe^John^Q^Dr^Jr", None),  # no MSH-18
    ],
)
def test_the_file_declares_the_set_its_values_need(
    tmp_path: Path, payload: bytes, name: str, written: str | None
) -> None:
    area = make_area(tmp_path, "WLMD", {})
    outcome = Intake(AreaEditor(str(tmp_path), "WLMD", 5.0), None, {}).handle(payload)
    assert outcome.code == "AA", outcome.reason
    (path,) = area.glob("*.wl")
    ds = dcmread(path)
    assert ds.get("SpecificCharacterSet") == written
    assert str(ds.PatientName) == name
