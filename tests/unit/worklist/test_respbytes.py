"""ResponseEncoder: the same bytes as building the node tree and encoding it, every case.

The tree path (respond.py + encode.py) is what the differential tests hold
against wlmscpfs; the direct encoder must not differ from it by one byte, for
any entry, mask, transfer syntax and return charset, including every wlmscpfs
cleanup (which it hands to the tree path).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from pydicom.dataset import Dataset

from tests.helpers.worklists import DROP, _default_sps
from tests.unit.conftest import mask_of
from wlmd.settings.config import ReturnCharset
from wlmd.worklist.encode import (
    DEFLATED_EXPLICIT_LITTLE,
    EXPLICIT_BIG,
    EXPLICIT_LITTLE,
    IMPLICIT_LITTLE,
    encode_identifier,
)
from wlmd.worklist.respbytes import ResponseEncoder
from wlmd.worklist.respond import ResponsePlan

ENCODINGS = (IMPLICIT_LITTLE, EXPLICIT_LITTLE, EXPLICIT_BIG, DEFLATED_EXPLICIT_LITTLE)


def _ds(**kw: Any) -> Dataset:
    from tests.helpers.worklists import set_value

    ds = Dataset()
    for k, v in kw.items():
        set_value(ds, k, v)
    return ds


def _code(value: str = "C1", scheme: str = "L") -> Dataset:
    return _ds(CodeValue=value, CodingSchemeDesignator=scheme, CodeMeaning="m")


def _ref(cls: str = "1.2.3", inst: str = "1.2.3.4") -> Dataset:
    return _ds(ReferencedSOPClassUID=cls, ReferencedSOPInstanceUID=inst)


def _sps(**kw: Any) -> Dataset:
    values = _default_sps()
    values.update(kw)
    return _ds(**values)


#: entries: the common case and each shape a cleanup or a special case looks at
ENTRIES: dict[str, dict[str, Any]] = {
    "complete": {},
    "odd lengths": {"PatientName": "DOE^JO", "AccessionNumber": "A1"},
    "no charset": {"SpecificCharacterSet": DROP},
    "latin1 charset": {"SpecificCharacterSet": "ISO_IR 100", "PatientName": "MÜLLER^JÖRG"},
    "pregnant": {"PregnancyStatus": 3},
    "empty description": {"RequestedProcedureDescription": ""},
    "no description": {"RequestedProcedureDescription": DROP},
    "empty sps description": {"ScheduledProcedureStepDescription": ""},
    "codes": {
        "RequestedProcedureCodeSequence": [_code()],
        "ScheduledProtocolCodeSequence": [_code(), _code("C2")],
    },
    "empty code item": {
        "RequestedProcedureCodeSequence": [_code("", "")],
        "ScheduledProtocolCodeSequence": [_code("", "")],
    },
    "no code items": {"RequestedProcedureCodeSequence": []},
    "references": {
        "ReferencedStudySequence": [_ref()],
        "ReferencedPatientSequence": [_ref(), _ref("1.2", "1.2.5")],
    },
    "empty reference item": {"ReferencedStudySequence": [_ref("", "")]},
    "no sps": {"ScheduledProcedureStepSequence": []},
    "two sps": {"ScheduledProcedureStepSequence": [_sps(), _sps(Modality="MR", StationName="X")]},
    "sps without description": {"ScheduledProcedureStepDescription": DROP},
    "value too long for its VR": {"PatientComments": "x" * 70_001},
}

FULL = {
    "AccessionNumber": None,
    "ReferringPhysicianName": None,
    "PatientName": None,
    "PatientID": None,
    "PatientBirthDate": None,
    "PatientSex": None,
    "StudyInstanceUID": None,
    "RequestingPhysician": None,
    "RequestedProcedureDescription": None,
    "RequestedProcedureID": None,
    "RequestedProcedurePriority": None,
}
SPS_FULL = {k: None for k in _default_sps()}

#: masks: a modality's usual key set, and the ones that bring in each rule
MASKS: dict[str, dict[str, Any]] = {
    "modality key set": {**FULL, "sps": SPS_FULL},
    "top only": {"PatientName": None, "PatientID": "PID*", "PatientComments": None},
    "pregnancy": {"PatientName": None, "PregnancyStatus": None},
    "charset asked": {"SpecificCharacterSet": "ISO_IR 100", "PatientName": None},
    "codes": {
        **FULL,
        "RequestedProcedureCodeSequence": [_ds(CodeValue=None, CodingSchemeDesignator=None)],
        "sps": {**SPS_FULL, "ScheduledProtocolCodeSequence": [_ds(CodeValue=None)]},
    },
    "code sequence echoed empty": {
        "RequestedProcedureDescription": None,
        "RequestedProcedureCodeSequence": [],
    },
    "references": {
        "PatientID": None,
        "ReferencedStudySequence": [_ds(ReferencedSOPClassUID=None, ReferencedSOPInstanceUID=None)],
        "ReferencedPatientSequence": [_ds(ReferencedSOPClassUID=None)],
    },
    "sequence echoed with two items": {
        "PatientID": None,
        "ReferencedStudySequence": [_ds(ReferencedSOPClassUID="1"), _ds(ReferencedSOPClassUID="2")],
    },
    "empty sps item": {"PatientID": None, "ScheduledProcedureStepSequence": [Dataset()]},
}


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from tests.helpers.worklists import complete_entry, write_wl
    from wlmd.worklist.entry import load_entry

    root = tmp_path_factory.mktemp("entries")
    out = {}
    for n, (name, overrides) in enumerate(ENTRIES.items()):
        path = write_wl(root / f"e{n}.wl", complete_entry(**overrides))
        out[name] = load_entry(str(path), f"e{n}.wl")
    return out


@pytest.mark.parametrize("mask_name", list(MASKS))
def test_same_bytes_as_the_tree_path(entries: dict[str, Any], mask_name: str) -> None:
    keys = dict(MASKS[mask_name])
    mask = mask_of(**keys)
    plan = ResponsePlan(mask)
    for enc, charset in itertools.product(ENCODINGS, ReturnCharset):
        encoder = ResponseEncoder(plan, enc, charset)
        for name, entry in entries.items():
            expected = encode_identifier(plan.build(entry, charset), enc)
            assert encoder.encode(entry) == expected, (mask_name, name, enc, charset)


def test_the_common_case_is_encoded_directly(entries: dict[str, Any]) -> None:
    """Not every entry through the tree path: the plain ones are written directly."""
    plan = ResponsePlan(mask_of(**MASKS["modality key set"]))
    for name in ("complete", "odd lengths", "latin1 charset", "two sps", "references"):
        encoder = ResponseEncoder(plan, EXPLICIT_LITTLE, ReturnCharset.KEEP)
        assert not encoder._cleanup_applies(entries[name]), name
        assert encoder._fast(entries[name]) is not None, name
