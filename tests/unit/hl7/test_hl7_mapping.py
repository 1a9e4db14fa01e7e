"""The default mapping (IHE RAD-4 / dcm4chee-arc) field by field, for ORM^O01 v2.3.1 and
OMI^O23 v2.5.1; escapes, repetitions, components, character sets; a site's overrides."""

from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from tests.helpers.hl7messages import OMI_IPC, omi, orm
from wlmd.hl7.mapping import MappingError, combined, parse_rules
from wlmd.hl7.message import Hl7Error, Message
from wlmd.hl7.orders import orders_of

STATIONS = {"CR": "CR01", "MR": "MRDEFAULT"}


def mapped(payload: bytes, site: str = "", stations: dict[str, str] = STATIONS) -> list[Dataset]:
    rules = combined(parse_rules(site, "site.map") if site else None)
    return [o.dataset for o in orders_of(Message(payload), rules, stations)]


def value(ds: Dataset, path: str) -> object:
    """``Keyword``, ``sps.Keyword`` or ``Sequence.Keyword`` (first item); None when absent."""
    holder, _, keyword = path.rpartition(".")
    if holder == "sps":
        ds = ds.ScheduledProcedureStepSequence[0]
    elif holder:
        items = ds.get(holder)
        if not items and holder == "ScheduledProtocolCodeSequence":
            items = ds.ScheduledProcedureStepSequence[0].get(holder)
        if not items:
            return None
        ds = items[0]
    element = ds.get(keyword)
    return None if element is None else str(element)


# (DICOM attribute, expected value, the HL7 field it comes from: for the test's name)
ORM_FIELDS = [
    ("PatientID", "PAT1", "PID-3.1 (first repetition)"),
    ("IssuerOfPatientID", "HOSP", "PID-3.4"),
    ("PatientName", "Doe^John^Q^Dr^Jr", "PID-5 XPN -> PN"),
    ("PatientBirthDate", "19600102", "PID-7"),
    ("PatientSex", "M", "PID-8"),
    ("ReferringPhysicianName", "Referrer^Rita", "PV1-8 XCN"),
    ("AdmissionID", "V77", "PV1-19"),
    ("PlacerOrderNumberImagingServiceRequest", "PL1", "ORC-2"),
    ("FillerOrderNumberImagingServiceRequest", "FI1", "ORC-3"),
    ("AccessionNumber", "ACC1", "OBR-18"),
    ("RequestedProcedureID", "RP1", "OBR-19"),
    ("StudyInstanceUID", "1.2.826.0.1.3680043.10.543.1", "ZDS-1"),
    ("RequestingPhysician", "Orderer^Otto", "OBR-16"),
    ("RequestedProcedureDescription", "CT Head", "OBR-4.2"),
    ("RequestedProcedureCodeSequence.CodeValue", "CTHEAD", "OBR-4.1"),
    ("RequestedProcedureCodeSequence.CodingSchemeDesignator", "LOCAL", "OBR-4.3"),
    ("RequestedProcedureCodeSequence.CodeMeaning", "CT Head", "OBR-4.2"),
    ("RequestedProcedurePriority", "STAT", "ORC-7.6"),
    ("ReasonForTheRequestedProcedure", "Headache", "OBR-31.2"),
    ("sps.ScheduledProcedureStepID", "SPS1", "OBR-20"),
    ("sps.Modality", "CT", "OBR-24"),
    ("sps.ScheduledStationAETitle", "CT01", "ORC-18"),
    ("sps.ScheduledProcedureStepStartDate", "20261202", "ORC-7.4"),
    ("sps.ScheduledProcedureStepStartTime", "093000", "ORC-7.4"),
    ("sps.ScheduledProcedureStepDescription", "CT Head", "OBR-4.2"),
    ("SpecificCharacterSet", None, "MSH-18 empty"),
]

OMI_FIELDS = [
    ("PatientID", "PAT1", "PID-3.1"),
    ("PatientName", "Doe^John^Q^Dr^Jr", "PID-5"),
    ("PlacerOrderNumberImagingServiceRequest", "PL2", "ORC-2"),
    ("FillerOrderNumberImagingServiceRequest", "FI2", "ORC-3"),
    ("AccessionNumber", "ACC2", "IPC-1"),
    ("RequestedProcedureID", "RP2", "IPC-2"),
    ("StudyInstanceUID", "1.2.826.0.1.3680043.10.543.2", "IPC-3"),
    ("RequestingPhysician", "Kaiser^Klara", "ORC-12 (no OBR-16)"),
    ("RequestedProcedureDescription", "MR Knee", "OBR-4.2"),
    ("RequestedProcedureCodeSequence.CodeValue", "MRKNEE", "OBR-4.1"),
    ("RequestedProcedurePriority", "ROUTINE", "TQ1-9"),
    ("sps.ScheduledProcedureStepID", "SPS2A", "IPC-4"),
    ("sps.Modality", "MR", "IPC-5"),
    ("sps.ScheduledStationAETitle", "MR01", "IPC-9"),
    ("sps.ScheduledStationName", "MRSTATION1", "IPC-7"),
    ("sps.ScheduledProcedureStepLocation", "MR Room 2", "IPC-8"),
    ("sps.ScheduledProcedureStepStartDate", "20261203", "TQ1-7"),
    ("sps.ScheduledProcedureStepStartTime", "101500", "TQ1-7"),
    ("sps.ScheduledProcedureStepDescription", "Knee T1", "IPC-6.2"),
    ("ScheduledProtocolCodeSequence.CodeValue", "T1", "IPC-6.1"),
    ("ScheduledProtocolCodeSequence.CodingSchemeDesignator", "L", "IPC-6.3"),
    ("ScheduledProtocolCodeSequence.CodeMeaning", "Knee T1", "IPC-6.2"),
    ("SpecificCharacterSet", "ISO_IR 192", "MSH-18 UNICODE UTF-8"),
]


@pytest.mark.parametrize(("path", "expected", "source"), ORM_FIELDS, ids=[f[2] for f in ORM_FIELDS])
def test_orm_o01_default_mapping(path: str, expected: str | None, source: str) -> None:
    (ds,) = mapped(orm())
    assert value(ds, path) == expected


@pytest.mark.parametrize(("path", "expected", "source"), OMI_FIELDS, ids=[f[2] for f in OMI_FIELDS])
def test_omi_o23_default_mapping(path: str, expected: str | None, source: str) -> None:
    (ds,) = mapped(omi())
    assert value(ds, path) == expected


def test_omi_one_entry_per_ipc_sharing_the_order() -> None:
    second = {**OMI_IPC, 4: "SPS2B", 6: "T2^Knee T2^L", 9: ""}
    first, other = mapped(omi(ipcs=(OMI_IPC, second)))
    assert value(first, "sps.ScheduledProcedureStepID") == "SPS2A"
    assert value(other, "sps.ScheduledProcedureStepID") == "SPS2B"
    assert value(other, "ScheduledProtocolCodeSequence.CodeValue") == "T2"
    assert value(other, "sps.ScheduledStationAETitle") == "MRDEFAULT", "per-modality default"
    assert value(other, "AccessionNumber") == value(first, "AccessionNumber") == "ACC2"


@pytest.mark.parametrize(
    ("orc", "tq1", "obr", "date", "time"),
    [
        ("^^^20261202093000", None, {}, "20261202", "093000"),  # ORM: ORC-7.4
        ("^^^20261202093000", {7: "20261205071500"}, {}, "20261205", "071500"),  # TQ1-7 first
        ("", None, {27: "^^^202612040800"}, "20261204", "080000"),  # OBR-27.4, minutes only
        ("", None, {36: "20261206"}, "20261206", "000000"),  # OBR-36, a date only
    ],
)
def test_scheduled_start_sources(
    orc: str, tq1: dict[int, str] | None, obr: dict[int, str], date: str, time: str
) -> None:
    extra = (("TQ1", tq1),) if tq1 else ()
    (ds,) = mapped(orm(orc={7: orc}, obr=obr, extra=extra))
    assert value(ds, "sps.ScheduledProcedureStepStartDate") == date
    assert value(ds, "sps.ScheduledProcedureStepStartTime") == time


@pytest.mark.parametrize(
    ("modality", "station"),
    [("CR", "CR01"), ("MR", "MRDEFAULT")],
)
def test_station_default_per_modality(modality: str, station: str) -> None:
    (ds,) = mapped(orm(orc={18: ""}, obr={24: modality}))
    assert value(ds, "sps.ScheduledStationAETitle") == station


def test_no_station_and_no_default_names_the_field() -> None:
    with pytest.raises(Hl7Error) as caught:
        mapped(orm(orc={18: ""}, obr={24: "US"}))
    assert caught.value.where == "ORC-18" and "--hl7-station-default" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (r"A\F\B", "A|B"),
        (r"A\S\B", "A^B"),
        (r"A\T\B", "A&B"),
        (r"A\R\B", "A~B"),
        (r"A\X4243\C", "ABCC"),
        (r"Line\.br\two", "Line two"),  # no CR in an LO
        (r"\H\Bold\N\ text", "Bold text"),  # highlighting dropped, not "_"
    ],
)
def test_escapes_in_a_component(raw: str, text: str) -> None:
    (ds,) = mapped(orm(obr={4: f"CTHEAD^{raw}^LOCAL"}))
    assert value(ds, "RequestedProcedureDescription") == text


@pytest.mark.parametrize(
    ("obr4", "where"),
    [
        (r"CTHEAD^CT ABD\E\PELVIS^LOCAL", "OBR-4"),  # RequestedProcedureDescription
        (r"CT\E\HEAD^CT Head^LOCAL", "OBR-4"),  # the code value (SH)
    ],
)
def test_an_escaped_backslash_in_a_dicom_value_is_refused(obr4: str, where: str) -> None:
    """\\E\\ is a backslash: DICOM's value delimiter outside LT/ST/UT (PS3.5 6.4)."""
    with pytest.raises(Hl7Error) as caught:
        mapped(orm(obr={4: obr4}))
    assert (caught.value.ack_code, caught.value.code, caught.value.where) == ("AE", 102, where)
    assert "backslash" in caught.value.reason


@pytest.mark.parametrize(
    ("charset", "encoding", "raw", "name", "dicom"),
    [
        ("", "ascii", "OBrien^Mary", "OBrien^Mary", None),
        ("8859/1", "latin-1", "Müller^Jürgen", "Müller^Jürgen", "ISO_IR 100"),
        ("8859/1", "latin-1", r"M\XFC\ller^J", "Müller^J", "ISO_IR 100"),  # hex is Latin-1
        ("UNICODE UTF-8", "utf-8", "Østergård^Åse", "Østergård^Åse", "ISO_IR 192"),
        ("UNICODE UTF-8", "utf-8", r"M\XC3BC\ller^J", "Müller^J", "ISO_IR 192"),  # hex is UTF-8
        ("ASCII", "ascii", "Doe^Jane", "Doe^Jane", None),
    ],
)
def test_character_sets_by_msh_18(
    charset: str, encoding: str, raw: str, name: str, dicom: str | None
) -> None:
    (ds,) = mapped(orm(charset=charset, encoding=encoding, pid={5: raw}))
    assert value(ds, "PatientName") == name
    assert value(ds, "SpecificCharacterSet") == dicom


@pytest.mark.parametrize(
    ("charset", "encoding", "code", "where"),
    [
        ("", "latin-1", "AE", "PID-5"),  # a byte above 0x7F without MSH-18
        ("UNICODE UTF-8", "latin-1", "AE", "PID-5"),  # Latin-1 bytes declared UTF-8
        ("ISO IR87", "latin-1", "AR", "MSH-18"),  # a set not supported
        ("8859/1~ISO IR87", "latin-1", "AR", "MSH-18"),  # switching
    ],
)
def test_wrong_encodings_are_refused(charset: str, encoding: str, code: str, where: str) -> None:
    with pytest.raises(Hl7Error) as caught:
        mapped(orm(charset=charset, encoding=encoding, pid={5: "Müller^J"}))
    assert (caught.value.ack_code, caught.value.where) == (code, where)


def test_repetitions_and_components_by_path() -> None:
    site = "OtherPatientIDs = PID-3[2].1\nIssuerOfPatientID = PID-3[2].4\n"
    (ds,) = mapped(orm(), site)
    assert value(ds, "OtherPatientIDs") == "ALT9"
    assert value(ds, "IssuerOfPatientID") == "OTHER"
    assert value(ds, "PatientID") == "PAT1", "the default rules not named stay"


def test_a_site_mapping_overrides_literals_and_drops() -> None:
    site = (
        "# site rules\n"
        "PatientID = PID-2 | PID-3.1\n"  # first non-empty source wins
        "ScheduledStationAETitle = 'CTSITE'\n"
        "AdmissionID =\n"  # an empty right-hand side drops the attribute
        "RequestedProcedureDescription = OBR-4.1\n"
    )
    (ds,) = mapped(orm(pid={2: ""}), site)
    assert value(ds, "PatientID") == "PAT1"
    assert value(ds, "sps.ScheduledStationAETitle") == "CTSITE"
    assert value(ds, "AdmissionID") is None
    assert value(ds, "RequestedProcedureDescription") == "CTHEAD"
    (ds,) = mapped(orm(pid={2: "EXT42"}), site)
    assert value(ds, "PatientID") == "EXT42"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("PatientNmae = PID-5", "line 1: 'PatientNmae' is not a DICOM keyword"),
        ("PatientID PID-3", "line 1: expected 'Keyword = SOURCE | ...'"),
        ("PatientID = PID3", "line 1: 'PID3' is not an HL7 path or 'literal'"),
        ("PatientName = PID-5 as shout", "line 1: unknown transform 'shout'"),
        ("PatientID.CodeValue = PID-3", "line 1: PatientID is not a sequence"),
        ("ScheduledProcedureStepSequence = OBR-4", "give a keyword inside"),
    ],
)
def test_bad_site_rules_name_the_line(line: str, reason: str) -> None:
    with pytest.raises(MappingError) as caught:
        parse_rules(line, "site.map")
    assert str(caught.value).startswith("site.map ") and reason in str(caught.value)


def test_an_escaped_backslash_is_kept_in_a_text_value() -> None:
    site = "CommentsOnTheScheduledProcedureStep = OBR-13\n"  # LT: a backslash is text
    (ds,) = mapped(orm(obr={13: r"C:\E\orders\E\1"}), site)
    assert value(ds, "sps.CommentsOnTheScheduledProcedureStep") == "C:\\orders\\1"
