"""The differential cases: one query, sent to wlmscpfs and to wlmd, must get equal answers.

Each ``Case`` is named (the pytest id), says which area (called AE title) and which
server options it needs, and optionally states what wlmscpfs is expected to answer
(``count``, ``final``, ``pending``) — a sanity check that the case really exercises
what its name says; the differential comparison itself is always complete: exit
status, association rejection, every pending status, the final status with its
OffendingElement/ErrorComment, and the multiset of response data sets.

Where wlmd deliberately differs from wlmscpfs the case has ``differs`` (the reason)
and ``check`` (what each server must do instead).

Differences that are never reported, by design of the comparison:

* response order — wlmscpfs answers in readdir order, wlmd in a deterministic order;
  responses are compared as multisets (``tests.helpers.compare``);
* server logs — only what goes over the wire is compared.

Character sets: values are compared as the raw bytes received, and Specific
Character Set (0008,0005) as an ordinary element. wlmscpfs never converts text, so
with ``-cs1`` a UTF-8 file is sent as UTF-8 bytes labelled ``ISO_IR 100`` and with
``-cs0`` without any label; wlmd must send the very same bytes and labels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from tests.helpers.dcmtk import ClientResult
from tests.helpers.worklists import DROP, query, raw_element, set_value

SUCCESS = 0x0000
PENDING = 0xFF00
PENDING_OPTIONAL_KEYS_UNSUPPORTED = 0xFF01
IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
OUT_OF_RESOURCES = 0xA700

BASE_TOP = (
    "AccessionNumber",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "RequestingPhysician",
    "RequestedProcedureDescription",
    "RequestedProcedureID",
    "RequestedProcedurePriority",
    "AdmissionID",
)
BASE_SPS = (
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "Modality",
    "ScheduledPerformingPhysicianName",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
)


def mwl(sps: dict[str, Any] | None = None, **keys: Any) -> Dataset:
    """A typical modality query: the usual return keys empty, ``keys``/``sps`` set or DROPped."""
    top: dict[str, Any] = dict.fromkeys(BASE_TOP)
    top.update(keys)
    item: dict[str, Any] = dict.fromkeys(BASE_SPS)
    item.update(sps or {})
    top = {k: v for k, v in top.items() if v is not DROP}
    item = {k: v for k, v in item.items() if v is not DROP}
    return query(**top, sps=item)


def with_raw(ds: Dataset, tag: int, vr: str, value: bytes) -> Dataset:
    ds[tag] = raw_element(tag, vr, value)
    return ds


def two_sps_items() -> Dataset:
    ds = mwl()
    first = Dataset()
    first.Modality = "CT"
    second = Dataset()
    second.Modality = "MR"
    set_value(ds, "ScheduledProcedureStepSequence", [first, second])
    return ds


def empty_sps(**keys: Any) -> Dataset:
    ds = query(**keys)
    set_value(ds, "ScheduledProcedureStepSequence", [])
    return ds


def code_sequences_query(**keys: Any) -> Dataset:
    code = Dataset()
    for kw in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning"):
        set_value(code, kw, "")
    protocol = Dataset()
    for kw in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning"):
        set_value(protocol, kw, "")
    ref = Dataset()
    set_value(ref, "ReferencedSOPClassUID", "")
    set_value(ref, "ReferencedSOPInstanceUID", "")
    ds = mwl(sps={"ScheduledProtocolCodeSequence": [protocol]}, **keys)
    set_value(ds, "RequestedProcedureCodeSequence", [code])
    set_value(ds, "ReferencedStudySequence", [ref])
    set_value(ds, "ReferencedPatientSequence", [])
    return ds


@dataclass(frozen=True)
class Case:
    id: str
    query: Dataset | None
    aec: str = "MAIN"
    options: tuple[str, ...] = ()
    kind: str = "find"  # "find" or "echo"
    aet: str = "FINDSCU"
    #: sanity checks on wlmscpfs's (reference) answer
    count: int | None = None
    final: int | None = SUCCESS
    pending: int | None = None
    note: str = ""
    #: a documented deliberate difference: no comparison; ``check(result, is_wlmd)`` instead
    differs: str | None = None
    check: Callable[[ClientResult, bool], None] | None = field(default=None, compare=False)


def C(case_id: str, q: Dataset | None, **kw: Any) -> Case:
    return Case(case_id, q, **kw)


NO_FAIL = ("--no-fail",)
REJECTED_CALLED_AE = (
    "Result: Rejected Permanent, Source: Service User",
    "Reason: Called AE Title Not Recognized",
)
PATH_AET = (
    "wlmscpfs uses the called AE title as a path below -dfp, so '..', 'X/' or 'X/sub' reach"
    " directories outside or inside the areas (it served MAIN for 'MAIN/' and looked for"
    " -dfp/../lockfile for '..'); wlmd rejects called AE titles that are not a plain"
    " directory name"
)


def _sps_nse_check(result: ClientResult, is_wlmd: bool) -> None:
    if is_wlmd:
        assert result.final_status == SUCCESS, result.describe()
        assert len(result.datasets) == 1, result.describe()
    else:  # the wlmscpfs child crashed: no response at all, association aborted
        assert not result.responses, result.describe()
        assert "Peer Aborted Association" in result.output, result.describe()


def _lockfile_check(result: ClientResult, is_wlmd: bool) -> None:
    assert result.final_status == OUT_OF_RESOURCES, result.describe()
    assert not result.datasets, result.describe()
    assert result.final is not None
    if is_wlmd:
        assert result.final.error_comment, result.describe()
    else:
        assert result.final.error_comment is None, result.describe()


def _path_aet_check(result: ClientResult, is_wlmd: bool, ref_final: int, ref_count: int) -> None:
    if is_wlmd:
        assert result.rejection == REJECTED_CALLED_AE, result.describe()
        assert not result.responses, result.describe()
    else:  # documents what wlmscpfs does with it
        assert result.final_status == ref_final, result.describe()
        assert len(result.datasets) == ref_count, result.describe()


#: Entries of MAIN that both servers serve (worklist_db: e08 is left out).
MAIN_SERVED = 9
EMPTY_MASK = (
    "wlmscpfs matches every entry, then DCMTK's DIMSE layer refuses to send the first empty"
    " response identifier ('sendMessage: dataset is empty') and aborts the association;"
    " wlmd sends what was asked for: one empty identifier per entry (PS3.4 C.2.2.2.3"
    " universal matching, C.4.1.1.3.2), then Success"
)


def _empty_mask_check(pending: int) -> Callable[[ClientResult, bool], None]:
    """An identifier without supported keys: wlmscpfs aborts, wlmd answers empty identifiers."""

    def check(result: ClientResult, is_wlmd: bool) -> None:
        if is_wlmd:
            assert result.returncode == 0, result.describe()
            assert result.final_status == SUCCESS, result.describe()
            assert [r.status for r in result.pending] == [pending] * MAIN_SERVED, result.describe()
            assert all(r.has_dataset for r in result.pending), result.describe()
            assert [len(ds) for ds in result.datasets] == [0] * MAIN_SERVED, result.describe()
            assert "Peer Aborted Association" not in result.output, result.describe()
        else:  # documents what wlmscpfs 3.6.7 does: no response at all, aborted
            assert not result.responses, result.describe()
            assert "Peer Aborted Association" in result.output, result.describe()

    return check


CASES: list[Case] = [
    # --- universal matching
    C("universal-all-return-keys", mwl(), count=9, note="e08 is incomplete (empty code sequences)"),
    C("universal-minimal-identifier", query(PatientName=None), count=9),
    C("universal-patientid-star", mwl(PatientID="*"), count=9, note="only '*' is universal"),
    C("universal-modality-star", mwl(sps={"Modality": "*"}), count=9),
    C("universal-station-star", mwl(sps={"ScheduledStationAETitle": "*"}), count=9),
    # --- single value matching on every matching key
    C("single-patientid", mwl(PatientID="PID002"), count=1),
    C("single-accession", mwl(AccessionNumber="ACC003"), count=1),
    C("single-patientname", mwl(PatientName="DOE^JANE"), count=1),
    C("single-referring", mwl(ReferringPhysicianName="WHO^WATSON"), count=1),
    C("single-requesting", mwl(RequestingPhysician="HOUSE^GREGORY"), count=1),
    C("single-issuer", mwl(IssuerOfPatientID="HOSP_B"), count=1),
    C("single-birthdate", mwl(PatientBirthDate="20000229"), count=1),
    C("single-sex", mwl(PatientSex="F"), count=3),
    C("single-admission", mwl(AdmissionID="ADM002"), count=1),
    C("single-requested-procedure-id", mwl(RequestedProcedureID="RP003"), count=1),
    C("single-priority", mwl(RequestedProcedurePriority="STAT"), count=1),
    C("single-responsible-person", mwl(ResponsiblePerson="RESP^ONE"), count=1),
    C("single-responsible-role", mwl(ResponsiblePersonRole="PARENT"), count=2),
    C("single-studydate", mwl(StudyDate="20240115", StudyTime=None), count=1),
    C("single-studytime-range", mwl(StudyTime="0900-1000", StudyDate=None), count=1),
    C(
        "studydate-and-studytime",
        mwl(StudyDate="20240115-20240116", StudyTime="1000-1500"),
        count=1,
    ),
    C(
        "single-empty-value-in-file",
        mwl(AccessionNumber="ACC006"),
        count=0,
        note="e06 has it empty",
    ),
    # --- wildcards on PN/LO/SH/CS keys
    C("wild-pn-trailing-star", mwl(PatientName="DOE*"), count=3),
    C("wild-pn-leading-star", mwl(PatientName="*JOHN"), count=1),
    C("wild-pn-middle-star", mwl(PatientName="DOE*JANE"), count=1),
    C("wild-pn-question", mwl(PatientName="DOE^JA?E"), count=1),
    C("wild-pn-questions-and-star", mwl(PatientName="?MITH^*"), count=1),
    C("wild-pn-only-questions", mwl(PatientName="???^????"), count=2),
    C("wild-pn-case-upper", mwl(PatientName="SMITH*"), count=1, note="PN is case sensitive"),
    C("wild-pn-case-lower", mwl(PatientName="smith*"), count=1),
    C("pn-exact-other-case", mwl(PatientName="SMITH^ANNA"), count=0),
    C("wild-sh-accession", mwl(AccessionNumber="ACC00?"), count=7),
    C("wild-lo-admission", mwl(AdmissionID="ADM*"), count=9),
    C("wild-lo-issuer", mwl(IssuerOfPatientID="*_B"), count=1),
    C("wild-cs-sex", mwl(PatientSex="?"), count=8, note="e06 has an empty PatientSex"),
    C("wild-sh-priority", mwl(RequestedProcedurePriority="*T*"), count=7),
    C(
        "wild-pn-performing-physician",
        mwl(sps={"ScheduledPerformingPhysicianName": "KIL*"}),
        count=1,
    ),
    # --- no wildcards on PatientID / Modality / ScheduledStationAETitle (as wlmscpfs)
    C("literal-patientid-star", mwl(PatientID="PID00*"), count=0),
    C("literal-patientid-question", mwl(PatientID="PID00?"), count=0),
    C("literal-patientid-asterisk-in-file", mwl(PatientID="X*Y"), count=1),
    C("literal-modality-star", mwl(sps={"Modality": "C*"}), count=0),
    C("literal-station-question", mwl(sps={"ScheduledStationAETitle": "STATION?"}), count=0),
    # --- dates and times
    C("sps-date-single", mwl(sps={"ScheduledProcedureStepStartDate": "20240115"}), count=4),
    C("sps-date-range", mwl(sps={"ScheduledProcedureStepStartDate": "20240115-20240120"})),
    C("sps-date-open-start", mwl(sps={"ScheduledProcedureStepStartDate": "-20240115"})),
    C("sps-date-open-end", mwl(sps={"ScheduledProcedureStepStartDate": "20240120-"})),
    C("sps-time-single", mwl(sps={"ScheduledProcedureStepStartTime": "093000"})),
    C("sps-time-range", mwl(sps={"ScheduledProcedureStepStartTime": "0800-1000"})),
    C("sps-time-open-start", mwl(sps={"ScheduledProcedureStepStartTime": "-0830"})),
    C("sps-time-open-end", mwl(sps={"ScheduledProcedureStepStartTime": "1400-"})),
    C(
        "sps-date-range-and-time-range",
        mwl(
            sps={
                "ScheduledProcedureStepStartDate": "20240115-20240116",
                "ScheduledProcedureStepStartTime": "0800-1000",
            }
        ),
    ),
    C(
        "sps-single-date-and-time-range",
        mwl(
            sps={
                "ScheduledProcedureStepStartDate": "20240115",
                "ScheduledProcedureStepStartTime": "0900-1500",
            }
        ),
    ),
    C(
        "sps-single-date-and-single-time",
        mwl(
            sps={
                "ScheduledProcedureStepStartDate": "20240116",
                "ScheduledProcedureStepStartTime": "140000",
            }
        ),
    ),
    C("birthdate-range", mwl(PatientBirthDate="19800101-20001231")),
    # --- multi-valued candidates and query values
    C("multivalued-station-in-file", mwl(sps={"ScheduledStationAETitle": "STATION3"}), count=2),
    C(
        "multivalued-other-patient-ids-returned",
        mwl(PatientID="PID005", OtherPatientIDs=None),
        count=1,
    ),
    C("multivalued-query-patientid", mwl(PatientID="PID001\\PID002"), count=2),
    C(
        "multivalued-query-modality",
        mwl(sps={"Modality": "CT\\MR"}),
        final=IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        note="wlmscpfs: a backslash is not in the CS repertoire",
    ),
    C("multivalued-query-patientname", mwl(PatientName="DOE^JANE\\ZETA^ZOE"), count=2),
    # --- matching inside the Scheduled Procedure Step Sequence
    C("sps-modality", mwl(sps={"Modality": "MR"}), count=3),
    C("sps-station", mwl(sps={"ScheduledStationAETitle": "STATION2"}), count=3),
    C(
        "sps-performing-physician",
        mwl(sps={"ScheduledPerformingPhysicianName": "KILDARE^JAMES"}),
        count=1,
    ),
    C(
        "sps-modality-and-station",
        mwl(sps={"Modality": "MR", "ScheduledStationAETitle": "STATION2"}),
        count=2,
    ),
    C(
        "sps-and-top-level",
        mwl(PatientSex="F", sps={"ScheduledProcedureStepStartDate": "20240116"}),
        count=2,
    ),
    # --- sequence expansion (and -nse)
    C("expand-empty-sps", empty_sps(PatientID="PID001")),
    C(
        "expand-empty-sps-nse",
        empty_sps(PatientID="PID001"),
        options=("-nse",),
        final=None,
        differs="wlmscpfs 3.6.7 segfaults (association aborted) on an empty SPS sequence with"
        " -nse; wlmd answers as for an empty item (the sequence is universal) without expansion",
        check=lambda result, is_wlmd: _sps_nse_check(result, is_wlmd),
    ),
    C(
        "expand-empty-code-sequences",
        query(PatientID="PID007", RequestedProcedureCodeSequence=[], ReferencedStudySequence=[]),
    ),
    C(
        "expand-empty-code-sequences-nse",
        query(PatientID="PID007", RequestedProcedureCodeSequence=[], ReferencedStudySequence=[]),
        options=("-nse",),
    ),
    # --- return keys
    C(
        "return-keys-absent-in-file",
        mwl(PatientID="PID001", PatientWeight=None, MedicalAlerts=None, PatientComments=None),
        count=1,
    ),
    C(
        "return-pregnancy-status-absent",
        mwl(AccessionNumber="ACC003", PregnancyStatus=None),
        count=1,
    ),
    C(
        "code-sequence-cleanup-empty-in-file",
        code_sequences_query(PatientID="R015"),
        aec="REJECT",
        options=("-dfr",),
        count=1,
    ),
    C(
        "code-sequence-cleanup-reference-empty-item",
        code_sequences_query(PatientID="R014"),
        aec="REJECT",
        options=("-dfr",),
        count=1,
    ),
    C("code-sequence-empty-in-file-rejected", code_sequences_query(PatientID="PID008"), count=0),
    C("code-sequence-present-in-file", code_sequences_query(PatientID="PID007"), count=1),
    C("code-sequence-absent-in-file", code_sequences_query(PatientID="PID009"), count=1),
    # --- unsupported keys: dropped, pending status 0xFF01
    C(
        "unsupported-modalities-in-study",
        mwl(ModalitiesInStudy=None),
        pending=PENDING_OPTIONAL_KEYS_UNSUPPORTED,
    ),
    C(
        "unsupported-patient-age",
        mwl(PatientID="PID001", PatientAge=None),
        pending=PENDING_OPTIONAL_KEYS_UNSUPPORTED,
    ),
    # --- an identifier without a single supported key (issue 11 item 13)
    C(
        "empty-mask-charset-only",
        query(SpecificCharacterSet="ISO_IR 100"),
        final=None,
        differs=EMPTY_MASK,
        check=_empty_mask_check(PENDING),
    ),
    C(
        "empty-mask-unsupported-only",
        query(PatientAge=None, ModalitiesInStudy=None),
        final=None,
        differs=EMPTY_MASK + "; 0xFF01 as for any query whose unsupported keys were dropped",
        check=_empty_mask_check(PENDING_OPTIONAL_KEYS_UNSUPPORTED),
    ),
    C(
        "empty-mask-charset-and-unsupported",
        query(SpecificCharacterSet="ISO_IR 100", PatientAge=None),
        final=None,
        differs=EMPTY_MASK,
        check=_empty_mask_check(PENDING_OPTIONAL_KEYS_UNSUPPORTED),
    ),
    # --- invalid requests: 0xA900 with OffendingElement and ErrorComment
    C("invalid-da", mwl(PatientBirthDate="20231345"), final=IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS),
    C(
        "invalid-tm",
        mwl(sps={"ScheduledProcedureStepStartTime": "256000"}),
        final=IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
    ),
    C("invalid-cs-lowercase", mwl(PatientSex="m"), final=IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS),
    C("invalid-two-sps-items", two_sps_items(), final=IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS),
    C(
        "invalid-da-no-fail",
        mwl(PatientBirthDate="20231345"),
        options=NO_FAIL,
        final=SUCCESS,
        count=0,
    ),
    C(
        "invalid-tm-no-fail",
        mwl(sps={"ScheduledProcedureStepStartTime": "256000"}),
        options=NO_FAIL,
        final=SUCCESS,
    ),
    C("invalid-cs-lowercase-no-fail", mwl(PatientSex="m"), options=NO_FAIL, final=SUCCESS),
    C("invalid-two-sps-items-no-fail", two_sps_items(), options=NO_FAIL, final=SUCCESS),
    # --- character sets
    C(
        "charset-non-ascii-pn-query-without-charset",
        with_raw(mwl(), 0x00100010, "PN", "MÜLLER*".encode("latin-1")),
        aec="CHARSET",
        final=IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
        note="wlmscpfs: non-ASCII bytes without Specific Character Set are invalid",
    ),
    C("charset-cs0", mwl(SpecificCharacterSet=None), aec="CHARSET", count=3),
    C("charset-cs1", mwl(SpecificCharacterSet=None), aec="CHARSET", options=("-cs1",), count=3),
    C("charset-csk", mwl(SpecificCharacterSet=None), aec="CHARSET", options=("-csk",), count=3),
    C("charset-csk-no-charset-key", mwl(), aec="CHARSET", options=("-csk",), count=3),
    C(
        "charset-request-carries-charset",
        mwl(SpecificCharacterSet="ISO_IR 100", PatientID="CS100"),
        aec="CHARSET",
        count=1,
    ),
    # --- incomplete files
    C("file-reject-enabled", mwl(), aec="REJECT", count=2),
    C("file-reject-disabled", mwl(), aec="REJECT", options=("-dfr",), count=16),
    C("file-reject-explicit-efr", mwl(), aec="REJECT", options=("-efr",), count=2),
    # --- which files are read
    C(
        "odd-files",
        mwl(),
        aec="ODDFILES",
        count=3,
        note="only *.wl regular files at top level, bad ones skipped",
    ),
    # --- lockfile
    C(
        "missing-lockfile",
        mwl(),
        aec="NOLOCK",
        final=OUT_OF_RESOURCES,
        differs="both refuse with 0xA700; wlmd adds an ErrorComment saying why (wlmscpfs"
        " sends none), so that the operator sees the cause at the modality",
        check=lambda result, is_wlmd: _lockfile_check(result, is_wlmd),
    ),
    # --- associations
    C("echo", None, kind="echo"),
    C("echo-unknown-aet", None, kind="echo", aec="NOSUCHAE", final=None),
    C("unknown-called-aet", mwl(), aec="NOSUCHAE", final=None),
    C(
        "called-aet-dotdot",
        mwl(),
        aec="..",
        final=None,
        differs=PATH_AET,
        check=lambda result, is_wlmd: _path_aet_check(result, is_wlmd, OUT_OF_RESOURCES, 0),
    ),
    C("called-aet-dotdot-slash", mwl(), aec="../MAIN", final=None),
    C(
        "called-aet-slash",
        mwl(),
        aec="MAIN/",
        final=None,
        differs=PATH_AET,
        check=lambda result, is_wlmd: _path_aet_check(result, is_wlmd, SUCCESS, 9),
    ),
    C(
        "called-aet-subdir",
        mwl(),
        aec="ODDFILES/sub",
        final=None,
        differs=PATH_AET,
        check=lambda result, is_wlmd: _path_aet_check(result, is_wlmd, OUT_OF_RESOURCES, 0),
    ),
    C("called-aet-lowercase", mwl(), aec="main", final=None),
]
