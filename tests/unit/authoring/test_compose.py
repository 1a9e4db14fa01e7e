"""Generated values, the character set for the values given, and names by order identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom import dcmread

from tests.helpers.worklists import DROP, complete_entry
from wlmd.authoring import compose
from wlmd.authoring.compose import Generation, UsedValues
from wlmd.authoring.errors import BadInput
from wlmd.authoring.verdict import judge_bytes
from wlmd.worklist import keys


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("DOE^JOHN", None),
        ("MÜLLER^JÖRG", "ISO_IR 100"),
        ("ŁUKASZ^BŁASZCZYK", "ISO_IR 192"),
        ("山田^太郎", "ISO_IR 192"),
    ],
)
def test_character_set_for_the_values(name: str, expected: str | None, tmp_path: Path) -> None:
    """Chosen from the values, written into the file, and read back as the same text."""
    ds = compose.prepared(complete_entry(PatientName=name, SpecificCharacterSet="ISO_IR 100"))
    assert compose.character_set_for(ds) == expected
    data = compose.encode(ds)
    entry, problem = judge_bytes(data)
    assert problem is None and entry is not None
    assert entry.charset == (expected or "")
    assert entry.root_text[keys.PATIENT_NAME] == name  # the server's decoding


def test_non_ascii_inside_the_step_counts() -> None:
    ds = compose.prepared(complete_entry(ScheduledPerformingPhysicianName="ĐOKOVIĆ^N"))
    assert compose.character_set_for(ds) == "ISO_IR 192"


def test_generated_values_fill_only_what_is_missing() -> None:
    ds = compose.prepared(complete_entry(AccessionNumber=DROP, ScheduledProcedureStepID=""))
    filled = compose.fill_generated(ds, Generation(), UsedValues())
    assert set(filled) == {"AccessionNumber", "ScheduledProcedureStepID"}
    assert ds.AccessionNumber == filled["AccessionNumber"]
    assert len(filled["AccessionNumber"]) <= 16
    assert ds.StudyInstanceUID == "1.2.826.0.1.3680043.10.1234.1"  # given: kept


def test_generation_is_configurable() -> None:
    ds = compose.prepared(complete_entry(StudyInstanceUID="", AccessionNumber=DROP))
    generation = Generation(accession_number=False, uid_root="1.2.826.0.1.999", id_prefix="W")
    filled = compose.fill_generated(ds, generation, UsedValues())
    assert set(filled) == {"StudyInstanceUID"}
    assert filled["StudyInstanceUID"].startswith("1.2.826.0.1.999.")
    assert len(filled["StudyInstanceUID"]) <= 64
    ds2 = compose.prepared(complete_entry(RequestedProcedureID=""))
    rp = compose.fill_generated(ds2, generation, UsedValues())["RequestedProcedureID"]
    assert rp.startswith("W") and len(rp) == 11


def test_default_uid_root_is_2_25() -> None:
    ds = compose.prepared(complete_entry(StudyInstanceUID=DROP))
    assert compose.fill_generated(ds, Generation(), UsedValues())["StudyInstanceUID"].startswith(
        "2.25."
    )


@pytest.mark.parametrize("root", ["1.2.03", "a.b", "1..2", "1." + "2" * 40])
def test_bad_uid_roots_are_refused(root: str) -> None:
    with pytest.raises(BadInput):
        Generation(uid_root=root)


def test_a_generated_id_never_collides(monkeypatch: pytest.MonkeyPatch) -> None:
    """A draw that is already used in the area is drawn again."""
    draws = iter(["TAKEN00001", "TAKEN00002", "FRESH00003"])
    monkeypatch.setattr(compose, "random_id", lambda: next(draws))
    used = UsedValues()
    used.add("AccessionNumber", "TAKEN00001")
    used.add("AccessionNumber", "TAKEN00002")
    ds = compose.prepared(complete_entry(AccessionNumber=DROP))
    generation = Generation(False, False, False, True)
    assert compose.fill_generated(ds, generation, used) == {"AccessionNumber": "FRESH00003"}
    assert used.taken("AccessionNumber", "FRESH00003")


def test_previous_values_are_kept_on_replacement() -> None:
    previous = compose.prepared(complete_entry(StudyInstanceUID="1.2.3.4"))
    ds = compose.prepared(complete_entry(StudyInstanceUID=DROP))
    filled = compose.fill_generated(ds, Generation(), UsedValues(), previous)
    assert filled == {"StudyInstanceUID": "1.2.3.4"}


def test_order_names() -> None:
    base = complete_entry()
    same = complete_entry(PatientName="OTHER^NAME", Modality="MR")
    other_step = complete_entry(ScheduledProcedureStepID="SPS0002")
    by_accession = complete_entry(StudyInstanceUID=DROP)
    name = compose.order_name(base)
    assert name is not None and name.endswith(".wl") and name.startswith("order-")
    assert compose.order_name(same) == name, "same StudyInstanceUID and SPS ID: same order"
    assert compose.order_name(other_step) != name
    assert compose.order_name(by_accession) == compose.name_for("accession\\ACC0001")
    assert compose.order_name(complete_entry(StudyInstanceUID=DROP, AccessionNumber=DROP)) is None
    assert all(c.isalnum() or c in "-." for c in name)


def test_encoded_file_meta(tmp_path: Path) -> None:
    path = tmp_path / "e.wl"
    path.write_bytes(compose.encode(compose.prepared(complete_entry())))
    meta = dcmread(path).file_meta
    assert meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert meta.MediaStorageSOPClassUID == compose.MWL_FIND_SOP_CLASS
    assert path.read_bytes()[128:132] == b"DICM"
