"""The worklist database the differential suite serves from both servers.

One data-files root holds several areas (one per called AE title), so one pair of
servers per option set serves every case:

``MAIN``      ten complete entries with varied matching-key values
``REJECT``    one complete entry and entries missing Type 1 return keys
``CHARSET``   ISO_IR 100, ISO_IR 192 and plain ASCII entries
``ODDFILES``  good files next to files that must be ignored or cannot be parsed
``NOLOCK``    a complete entry but no ``lockfile``
``OFFIS``     DCMTK's own sample database (converted with dump2dcm at test time)
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset

from tests.helpers.dcmtk import dcmtk_examples_dir, dump2dcm
from tests.helpers.worklists import DROP, complete_entry, make_area, raw_element, write_wl


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def main_entries() -> dict[str, Dataset]:
    """Ten complete entries; each attribute varies so single-key queries select subsets."""
    e: dict[str, Dataset] = {}
    e["e01.wl"] = complete_entry(
        PatientName="DOE^JOHN",
        PatientID="PID001",
        AccessionNumber="ACC001",
        IssuerOfPatientID="HOSP_A",
        PatientBirthDate="19700101",
        PatientSex="M",
        AdmissionID="ADM001",
        RequestedProcedureID="RP001",
        RequestedProcedurePriority="ROUTINE",
        ResponsiblePerson="RESP^ONE",
        ResponsiblePersonRole="PARENT",
        StudyDate="20240115",
        StudyTime="093000",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.1",
        ScheduledStationAETitle="STATION1",
        ScheduledProcedureStepStartDate="20240115",
        ScheduledProcedureStepStartTime="093000",
        Modality="CT",
        ScheduledProcedureStepID="SPS001",
    )
    e["e02.wl"] = complete_entry(
        PatientName="DOE^JANE",
        PatientID="PID002",
        AccessionNumber="ACC002",
        ReferringPhysicianName="WHO^WATSON",
        RequestingPhysician="HOUSE^GREGORY",
        IssuerOfPatientID="HOSP_B",
        PatientBirthDate="19851231",
        PatientSex="F",
        AdmissionID="ADM002",
        RequestedProcedureID="RP002",
        RequestedProcedurePriority="STAT",
        ResponsiblePerson="RESP^TWO",
        ResponsiblePersonRole="CHILD",
        StudyDate="20240116",
        StudyTime="140000",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.2",
        ScheduledStationAETitle="STATION2",
        ScheduledProcedureStepStartDate="20240116",
        ScheduledProcedureStepStartTime="140000",
        Modality="MR",
        ScheduledPerformingPhysicianName="KILDARE^JAMES",
        ScheduledProcedureStepID="SPS002",
    )
    e["e03.wl"] = complete_entry(
        PatientName="SMITH^ANNA^MARIE",
        PatientID="X*Y",  # a literal asterisk: PatientID matching never uses wildcards
        AccessionNumber="ACC003",
        PatientBirthDate="20000229",
        PatientSex="F",
        AdmissionID="ADM003",
        RequestedProcedureID="RP003",
        RequestedProcedurePriority="HIGH",
        StudyDate="20240201",
        StudyTime="0800",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.3",
        ScheduledStationAETitle="STATION1",
        ScheduledProcedureStepStartDate="20240201",
        ScheduledProcedureStepStartTime="0800",
        Modality="US",
        ScheduledProcedureStepID="SPS003",
    )
    e["e04.wl"] = complete_entry(
        PatientName="smith^anna",  # lower case: PN matching is case sensitive
        PatientID="PID004",
        AccessionNumber="ACC004",
        PatientBirthDate="19991231",
        PatientSex="O",
        RequestedProcedureID="RP004",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.4",
        ScheduledStationAETitle="STATION3",
        ScheduledProcedureStepStartDate="20231231",
        ScheduledProcedureStepStartTime="235959",
        Modality="CR",
        ScheduledProcedureStepID="SPS004",
    )
    e["e05.wl"] = complete_entry(
        PatientName="MUSTERMANN^MAX",
        PatientID="PID005",
        OtherPatientIDs="OTH1\\OTH2",
        AccessionNumber="ACC005",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.5",
        ScheduledStationAETitle="STATION1\\STATION3",  # multi-valued candidate
        ScheduledProcedureStepStartDate="20240115",
        ScheduledProcedureStepStartTime="1405",
        Modality="MR",
        ScheduledProcedureStepID="SPS005",
        RequestedProcedureID="RP005",
    )
    e["e06.wl"] = complete_entry(
        PatientName="O'BRIEN^SEAN",
        PatientID="PID006",
        AccessionNumber="",
        PatientBirthDate="",
        PatientSex="",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.6",
        ScheduledStationAETitle="STATION2",
        ScheduledProcedureStepStartDate="20240120",
        ScheduledProcedureStepStartTime="000000",
        Modality="US",
        ScheduledProcedureStepID="SPS006",
        RequestedProcedureID="RP006",
        MedicalAlerts="LATEX",
    )
    e["e07.wl"] = complete_entry(
        PatientName="DOE^JOHN^^DR",
        PatientID="PID007",
        AccessionNumber="ACC007",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.7",
        ScheduledStationAETitle="STATION4",
        ScheduledProcedureStepStartDate="20240115",
        ScheduledProcedureStepStartTime="093000.123456",
        Modality="CT",
        ScheduledProcedureStepID="SPS007",
        RequestedProcedureID="RP007",
        RequestedProcedureCodeSequence=[_code("RPC1", "99LOCAL", "Head CT")],
        ScheduledProtocolCodeSequence=[_code("SPC1", "99LOCAL", "Head protocol")],
    )
    e["e08.wl"] = complete_entry(
        PatientName="EMPTY^CODES",
        PatientID="PID008",
        AccessionNumber="ACC008",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.8",
        ScheduledStationAETitle="STATION4",
        ScheduledProcedureStepStartDate="20240301",
        ScheduledProcedureStepStartTime="120000",
        Modality="CT",
        ScheduledProcedureStepID="SPS008",
        RequestedProcedureID="RP008",
        RequestedProcedureCodeSequence=[],
        ScheduledProtocolCodeSequence=[],
    )
    e["e09.wl"] = complete_entry(
        PatientName="NOSPECIFIC^PAT",
        PatientID="PID009",
        AccessionNumber="ACC009",
        SpecificCharacterSet=DROP,
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.9",
        ScheduledStationAETitle="STATION5",
        ScheduledProcedureStepStartDate="20240115",
        ScheduledProcedureStepStartTime="2200",
        Modality="MG",
        ScheduledProcedureStepID="SPS009",
        RequestedProcedureID="RP009",
        ReferencedStudySequence=DROP,
        ReferencedPatientSequence=DROP,
    )
    e["e10.wl"] = complete_entry(
        PatientName="ZETA^ZOE",
        PatientID="PID010",
        AccessionNumber="ACC010",
        PatientSex="F",
        StudyInstanceUID="1.2.826.0.1.3680043.10.1234.10",
        ScheduledStationAETitle="STATION2",
        ScheduledProcedureStepStartDate="20240116",
        ScheduledProcedureStepStartTime="0815",
        Modality="MR",
        ScheduledProcedureStepID="SPS010",
        RequestedProcedureID="RP010",
        RequestedProcedurePriority="LOW",
        ResponsiblePersonRole="PARENT",
    )
    return e


def reject_entries() -> dict[str, Dataset]:
    """Entries that ``--enable-file-reject`` must drop (names say what is missing)."""
    return {
        "complete.wl": complete_entry(PatientID="R000"),
        "no_sps_id.wl": complete_entry(PatientID="R001", ScheduledProcedureStepID=DROP),
        "no_patient_id.wl": complete_entry(PatientID=DROP, AccessionNumber="R002"),
        "empty_patient_id.wl": complete_entry(PatientID="", AccessionNumber="R003"),
        "no_description.wl": complete_entry(PatientID="R004", RequestedProcedureDescription=""),
        "description_by_code.wl": complete_entry(
            PatientID="R005",
            RequestedProcedureDescription=DROP,
            RequestedProcedureCodeSequence=[_code("RPC5", "99LOCAL", "By code")],
        ),
        "no_study_uid.wl": complete_entry(PatientID="R006", StudyInstanceUID=DROP),
        "no_start_date.wl": complete_entry(PatientID="R007", ScheduledProcedureStepStartDate=DROP),
        "no_modality.wl": complete_entry(PatientID="R008", Modality=""),
        "no_station.wl": complete_entry(PatientID="R009", ScheduledStationAETitle=DROP),
        "empty_sps.wl": complete_entry(PatientID="R010", ScheduledProcedureStepSequence=[]),
        "no_sps_description.wl": complete_entry(
            PatientID="R011", ScheduledProcedureStepDescription=DROP
        ),
        "no_patient_name.wl": complete_entry(PatientID="R012", PatientName=DROP),
        "no_requested_procedure_id.wl": complete_entry(PatientID="R013", RequestedProcedureID=DROP),
        "ref_study_empty_item.wl": complete_entry(
            PatientID="R014", ReferencedStudySequence=[Dataset()]
        ),
        "code_sequences_empty.wl": complete_entry(
            PatientID="R015", RequestedProcedureCodeSequence=[], ScheduledProtocolCodeSequence=[]
        ),
    }


def charset_entries() -> dict[str, Dataset]:
    latin1 = complete_entry(PatientID="CS100", RequestedProcedureDescription="CT SCHÄDEL")
    latin1[0x00100010] = raw_element(0x00100010, "PN", "MÜLLER^JÖRG".encode("latin-1"))
    utf8 = complete_entry(PatientID="CS192", SpecificCharacterSet="ISO_IR 192")
    utf8[0x00100010] = raw_element(0x00100010, "PN", "ŁUKASZ^ŻÓŁW".encode())
    utf8[0x00321060] = raw_element(0x00321060, "LO", "TK GŁOWY".encode())
    ascii_only = complete_entry(
        PatientID="CSNONE", SpecificCharacterSet=DROP, PatientName="PLAIN^ASCII"
    )
    return {"latin1.wl": latin1, "utf8.wl": utf8, "ascii.wl": ascii_only}


def build_oddfiles(root: Path) -> Path:
    files: dict[str, Dataset | bytes] = {
        "good.wl": complete_entry(PatientID="ODD1"),
        "implicit.wl": complete_entry(PatientID="ODD2"),
        "upper.WL": complete_entry(PatientID="ODD3"),
        "backup.wl.bak": complete_entry(PatientID="ODD4"),
        "noextension": complete_entry(PatientID="ODD5"),
        "sub/inner.wl": complete_entry(PatientID="ODD6"),
        "corrupt.wl": b"\x00\x01garbage\xff" * 20,
        "text.wl": b"this is not a DICOM file\n",
        "empty.wl": b"",
    }
    area = make_area(root, "ODDFILES", files)
    write_wl(area / "implicit.wl", complete_entry(PatientID="ODD2"), "implicit")
    write_wl(area / "bigendian.wl", complete_entry(PatientID="ODD7"), "big")
    good = (area / "good.wl").read_bytes()
    (area / "truncated.wl").write_bytes(good[: len(good) * 2 // 3])
    (area / "dir.wl").mkdir()
    return area


def build_offis(root: Path) -> Path | None:
    """DCMTK's sample worklist database in ``root/OFFIS`` (None when not installed)."""
    examples = dcmtk_examples_dir()
    if examples is None:
        return None
    area = root / "OFFIS"
    area.mkdir(parents=True, exist_ok=True)
    (area / "lockfile").touch()
    for dump in sorted((examples / "wlistdb" / "OFFIS").glob("*.dump")):
        dump2dcm(dump, area / (dump.stem + ".wl"))
    return area


def build_database(root: Path) -> Path:
    """Create every area under ``root`` and return ``root`` (the ``-dfp`` directory)."""
    make_area(root, "MAIN", main_entries())
    make_area(root, "REJECT", reject_entries())
    make_area(root, "CHARSET", charset_entries())
    build_oddfiles(root)
    make_area(root, "NOLOCK", {"entry.wl": complete_entry(PatientID="NOLOCK1")}, lockfile=False)
    build_offis(root)
    return root
