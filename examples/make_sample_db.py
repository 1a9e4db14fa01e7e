#!/usr/bin/env python3
"""Generate wlmd's bundled sample worklist database, byte for byte reproducibly.

    examples/make_sample_db.py            # (re)write examples/wlistdb/WLMD/
    examples/make_sample_db.py --check    # exit 1 if the files on disk differ
    examples/make_sample_db.py -o DIR     # write DIR/WLMD/ instead

The result is a wlmscpfs-style data files path (DCMTK wlmsetup.txt): one storage
area ``WLMD/`` for the called AE title WLMD, an empty ``lockfile`` and ten ``.wl``
files. All patients, physicians and codes are fictional. Nothing depends on the
clock, the host or random numbers: every UID is ``2.25.<uuid5>`` derived from a
fixed name, and the file meta information is fixed, so running this twice (with
the pinned pydicom) gives identical bytes.

Writing follows the storage area's lockfile protocol (see examples/README.md):
an fcntl write lock on ``lockfile`` for the whole update, each file written to a
temporary name without the ``.wl`` extension and then renamed into place.
"""

from __future__ import annotations

import argparse
import fcntl
import io
import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

try:
    from pydicom import config, dcmwrite
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import UID, ExplicitVRLittleEndian
except ImportError:  # pragma: no cover - only on a machine without pydicom
    _venv_python = Path(__file__).resolve().parent.parent / ".venv" / "bin" / "python"
    if _venv_python.exists() and Path(sys.executable).resolve() != _venv_python.resolve():
        os.execv(str(_venv_python), [str(_venv_python), *sys.argv])
    sys.exit("make_sample_db.py needs pydicom: run scripts/bootstrap first")

AE_TITLE = "WLMD"
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "wlistdb"

# Fixed roots: changing one of these changes every UID in the sample database.
UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:wlmd:examples:wlistdb")


def make_uid(name: str) -> str:
    """A UID under the UUID-derived root 2.25 (PS3.5 B.2), fixed by ``name``."""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, name).int}"


# File meta: Modality Worklist Information Model - FIND as the "storage" SOP class
# (a worklist file is not a stored instance; this is what worklist tools commonly
# put there), and an implementation class UID of the generator, not of pydicom,
# so that a pydicom upgrade does not silently change the files.
MEDIA_STORAGE_SOP_CLASS_UID = "1.2.840.10008.5.1.4.31"
IMPLEMENTATION_CLASS_UID = make_uid("implementation/make_sample_db")
IMPLEMENTATION_VERSION_NAME = "WLMD_EXAMPLES_1"  # SH, at most 16 characters

# Retired Detached Study/Patient Management SOP classes: what RIS systems still
# put into ReferencedStudySequence / ReferencedPatientSequence of worklist items.
DETACHED_STUDY_MANAGEMENT = "1.2.840.10008.3.1.2.3.1"
DETACHED_PATIENT_MANAGEMENT = "1.2.840.10008.3.1.2.1.1"

# Codes use a private coding scheme (PS3.3 8.2: designators starting with "99").
CODING_SCHEME = "99WLMD"


@dataclass(frozen=True)
class Code:
    value: str
    meaning: str

    def item(self) -> Dataset:
        ds = Dataset()
        ds.CodeValue = self.value
        ds.CodingSchemeDesignator = CODING_SCHEME
        ds.CodeMeaning = self.meaning
        return ds


@dataclass(frozen=True)
class Entry:
    """One worklist file: one requested procedure with one scheduled step."""

    number: int
    patient_name: str
    patient_id: str
    birth_date: str  # "" = known to exist but empty (type 2)
    sex: str
    modality: str
    station_aet: str  # "A\\B" for two values
    station_name: str
    start_date: str
    start_time: str
    performing_physician: str
    priority: str
    accession: str
    charset: str | None = None
    requested_description: str | None = None
    requested_code: Code | None = None
    step_description: str | None = None
    protocol_codes: tuple[Code, ...] = ()
    location: str = ""
    referring_physician: str = ""
    requesting_physician: str = ""
    admission_id: str = ""
    medical_alerts: str = ""
    allergies: str = ""
    patient_weight: str | None = None
    pregnancy_status: int | None = None
    referenced_study: bool = False
    referenced_patient: bool = False
    comments: str = ""

    @property
    def filename(self) -> str:
        return f"wklist{self.number:02d}.wl"


# Ten entries over four days of a fixed (future) year. The variety mirrors what
# DCMTK's own samples exercise: modalities, station AE titles (one with two
# values), priorities, description vs. code sequence, empty and filled
# referenced sequences, and three non-ASCII character sets.
ENTRIES: tuple[Entry, ...] = (
    Entry(
        number=1,
        patient_name="Lindqvist^Maja",
        patient_id="WLMD-1001",
        birth_date="19780214",
        sex="F",
        modality="CT",
        station_aet="CT01",
        station_name="CT ROOM 1",
        start_date="20300513",
        start_time="080000",
        performing_physician="Berg^Tomas",
        priority="ROUTINE",
        accession="A30-0001",
        requested_description="CT thorax with contrast",
        requested_code=Code("CT-THX-C", "CT thorax with contrast"),
        step_description="CT thorax, contrast phase",
        protocol_codes=(Code("P-CT-THX-C", "Thorax contrast protocol"),),
        location="RAD CT",
        referring_physician="Holm^Ingrid",
        requesting_physician="Holm^Ingrid",
        admission_id="ADM-30-101",
        allergies="Iodine contrast, mild",
        patient_weight="64",
    ),
    Entry(
        number=2,
        patient_name="Okafor^Chinedu^Emeka",
        patient_id="WLMD-1002",
        birth_date="19650930",
        sex="M",
        modality="MR",
        station_aet="MR01",
        station_name="MR ROOM 1",
        start_date="20300513",
        start_time="093000",
        performing_physician="Varga^Lili",
        priority="HIGH",
        accession="A30-0002",
        requested_description="MRI brain",
        step_description="MRI brain without contrast",
        protocol_codes=(
            Code("P-MR-BR-T1", "Brain T1"),
            Code("P-MR-BR-T2", "Brain T2 FLAIR"),
        ),
        location="RAD MR",
        referring_physician="Adeyemi^Funmi",
        medical_alerts="Pacemaker checked: none",
        patient_weight="88",
        referenced_study=True,
    ),
    Entry(
        number=3,
        charset="ISO_IR 100",
        patient_name="Müller^Jürgen",
        patient_id="WLMD-1003",
        birth_date="19590703",
        sex="M",
        modality="US",
        station_aet="US01",
        station_name="SONO 1",
        start_date="20300513",
        start_time="111500",
        performing_physician="Schäfer^Anna",
        priority="ROUTINE",
        accession="A30-0003",
        requested_description="Ultraschall Abdomen",
        step_description="Abdomen komplett",
        location="Sonographie Süd",
        referring_physician="Köhler^Gerd",
        requesting_physician="Köhler^Gerd",
        comments="Nüchtern erscheinen",
    ),
    Entry(
        number=4,
        charset="ISO_IR 100",
        patient_name="Ångström^Åsa",
        patient_id="WLMD-1004",
        birth_date="19880422",
        sex="F",
        modality="MG",
        station_aet="MG01",
        station_name="MAMMO 1",
        start_date="20300514",
        start_time="084500",
        performing_physician="Nyström^Björn",
        priority="LOW",
        accession="A30-0004",
        requested_code=Code("MG-SCR-BI", "Screening mammography, bilateral"),
        step_description="Mammografi screening",
        protocol_codes=(Code("P-MG-4V", "Four standard views"),),
        location="Bröstcentrum",
        referring_physician="Öberg^Märta",
        pregnancy_status=1,  # not pregnant
        referenced_patient=True,
    ),
    Entry(
        number=5,
        charset="ISO_IR 192",
        patient_name="Dvořáková^Eliška",
        patient_id="WLMD-1005",
        birth_date="19930117",
        sex="F",
        modality="NM",
        station_aet="NM01",
        station_name="GAMMA 1",
        start_date="20300514",
        start_time="100000",
        performing_physician="Růžička^Tomáš",
        priority="ROUTINE",
        accession="A30-0005",
        requested_description="Scintigrafie štítné žlázy",
        requested_code=Code("NM-THY", "Thyroid scintigraphy"),
        step_description="Scintigrafie štítné žlázy, Tc-99m",
        location="Nukleární med.",
        referring_physician="Černý^Jiří",
        requesting_physician="Černý^Jiří",
        pregnancy_status=1,
    ),
    Entry(
        number=6,
        patient_name="Nakamura^Kenji",
        patient_id="WLMD-1006",
        birth_date="19470611",
        sex="M",
        modality="CR",
        station_aet="CR01\\CR02",
        station_name="XRAY 1",
        start_date="20300514",
        start_time="103000",
        performing_physician="Duarte^Paula",
        priority="STAT",
        accession="A30-0006",
        requested_description="Chest X-ray PA and lateral",
        step_description="Chest PA and lateral",
        location="ED XRAY",
        referring_physician="Iversen^Ole",
        admission_id="ADM-30-106",
        medical_alerts="Fall risk",
        referenced_study=True,
        referenced_patient=True,
    ),
    Entry(
        number=7,
        patient_name="Fernandes^Ana",
        patient_id="WLMD-1007",
        birth_date="",  # type 2: present, value unknown
        sex="F",
        modality="NM",
        station_aet="NM01",
        station_name="GAMMA 1",
        start_date="20300515",
        start_time="073000",
        performing_physician="Ruzicka^Tomas",
        priority="LOW",
        accession="A30-0007",
        requested_code=Code("NM-BONE-WB", "Bone scintigraphy, whole body"),
        protocol_codes=(Code("P-NM-BONE-3P", "Three-phase bone protocol"),),
        location="NUC MED",
    ),
    Entry(
        number=8,
        patient_name="Kowalski^Piotr",
        patient_id="WLMD-1008",
        birth_date="19820305",
        sex="M",
        modality="CT",
        station_aet="CT02",
        station_name="CT ROOM 2",
        start_date="20300515",
        start_time="130000",
        performing_physician="Berg^Tomas",
        priority="STAT",
        accession="A30-0008",
        requested_description="CT head without contrast",
        requested_code=Code("CT-HEAD", "CT head without contrast"),
        step_description="CT head non-contrast",
        location="ED CT",
        referring_physician="Iversen^Ole",
        requesting_physician="Iversen^Ole",
        admission_id="ADM-30-108",
        patient_weight="79.5",
        referenced_study=True,
        referenced_patient=True,
    ),
    Entry(
        number=9,
        patient_name="O'Brien^Siobhan",
        patient_id="WLMD-1009",
        birth_date="20010829",
        sex="F",
        modality="MR",
        station_aet="MR01",
        station_name="MR ROOM 1",
        start_date="20300516",
        start_time="140000",
        performing_physician="Varga^Lili",
        priority="MEDIUM",
        accession="A30-0009",
        requested_description="MRI knee, right",
        requested_code=Code("MR-KNEE-R", "MRI knee, right"),
        step_description="MRI knee right",
        protocol_codes=(Code("P-MR-KNEE", "Knee routine"),),
        location="RAD MR",
        referring_physician="Adeyemi^Funmi",
        pregnancy_status=4,  # unknown
    ),
    Entry(
        number=10,
        # a second procedure for the patient of wklist02
        patient_name="Okafor^Chinedu^Emeka",
        patient_id="WLMD-1002",
        birth_date="19650930",
        sex="M",
        modality="US",
        station_aet="US01",
        station_name="SONO 1",
        start_date="20300516",
        start_time="161500",
        performing_physician="Schafer^Anna",
        priority="ROUTINE",
        accession="A30-0010",
        requested_description="Carotid duplex ultrasound",
        step_description="Carotid duplex, both sides",
        location="VASC LAB",
        referring_physician="Adeyemi^Funmi",
        requesting_physician="Adeyemi^Funmi",
    ),
)


def referenced_item(sop_class_uid: str, name: str) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = make_uid(name)
    return item


def build_dataset(e: Entry) -> Dataset:
    """The data set of one worklist file (PS3.4 Table K.6-1 return keys)."""
    tag = f"wklist{e.number:02d}"
    ds = Dataset()
    if e.charset:
        ds.SpecificCharacterSet = e.charset  # set first: it governs text encoding
    # SOP Common / Patient Identification / Patient Demographic
    ds.PatientName = e.patient_name
    ds.PatientID = e.patient_id
    ds.PatientBirthDate = e.birth_date
    ds.PatientSex = e.sex
    if e.patient_weight is not None:
        ds.PatientWeight = e.patient_weight
    if e.medical_alerts:
        ds.MedicalAlerts = e.medical_alerts
    if e.allergies:
        ds.Allergies = e.allergies
    if e.pregnancy_status is not None:
        ds.PregnancyStatus = e.pregnancy_status
    # Visit
    ds.AdmissionID = e.admission_id
    ds.CurrentPatientLocation = e.location
    # Imaging Service Request
    ds.AccessionNumber = e.accession
    ds.ReferringPhysicianName = e.referring_physician
    ds.RequestingPhysician = e.requesting_physician
    # Requested Procedure
    ds.RequestedProcedureID = f"RP-{e.number:04d}"
    ds.RequestedProcedurePriority = e.priority
    if e.requested_description is not None:
        ds.RequestedProcedureDescription = e.requested_description
    if e.requested_code is not None:
        ds.RequestedProcedureCodeSequence = Sequence([e.requested_code.item()])
    ds.StudyInstanceUID = make_uid(f"{tag}/study")
    ds.ReferencedStudySequence = Sequence(
        [referenced_item(DETACHED_STUDY_MANAGEMENT, f"{tag}/referenced-study")]
        if e.referenced_study
        else []
    )
    ds.ReferencedPatientSequence = Sequence(
        [referenced_item(DETACHED_PATIENT_MANAGEMENT, f"{tag}/referenced-patient")]
        if e.referenced_patient
        else []
    )
    # Scheduled Procedure Step: exactly one item (wlmscpfs rejects anything else)
    sps = Dataset()
    sps.ScheduledStationAETitle = (
        e.station_aet.split("\\") if "\\" in e.station_aet else e.station_aet
    )
    sps.ScheduledStationName = e.station_name
    sps.ScheduledProcedureStepLocation = e.location
    sps.ScheduledProcedureStepStartDate = e.start_date
    sps.ScheduledProcedureStepStartTime = e.start_time
    sps.Modality = e.modality
    sps.ScheduledPerformingPhysicianName = e.performing_physician
    if e.step_description is not None:
        sps.ScheduledProcedureStepDescription = e.step_description
    if e.protocol_codes:
        sps.ScheduledProtocolCodeSequence = Sequence([c.item() for c in e.protocol_codes])
    sps.ScheduledProcedureStepID = f"SPS-{e.number:04d}"
    sps.PreMedication = ""
    sps.CommentsOnTheScheduledProcedureStep = e.comments
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds


def encode(e: Entry) -> bytes:
    """The complete file (preamble, file meta, data set) for one entry."""
    ds = build_dataset(e)
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(MEDIA_STORAGE_SOP_CLASS_UID)
    meta.MediaStorageSOPInstanceUID = UID(make_uid(f"wklist{e.number:02d}/file"))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
    buffer = io.BytesIO()
    dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def generate() -> dict[str, bytes]:
    return {e.filename: encode(e) for e in ENTRIES}


def write_area(area: Path, files: dict[str, bytes]) -> None:
    """Replace the area's .wl files under the lockfile protocol."""
    area.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(area / "lockfile", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # wlmscpfs (and wlmd) take a read lock on this file before reading the
        # area; a writer holds the write lock for the whole update.
        fcntl.lockf(lock_fd, fcntl.LOCK_EX)
        for name, data in files.items():
            temp = area / (Path(name).stem + ".tmp")  # no .wl: never read half-written
            with open(temp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, area / name)
        for stale in sorted(area.glob("*.wl")):
            if stale.name not in files:
                print(f"removing {stale} (not part of the sample database)", file=sys.stderr)
                stale.unlink()
        dir_fd = os.open(area, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        os.close(lock_fd)  # releases the lock


def check_area(area: Path, files: dict[str, bytes]) -> list[str]:
    """Differences between ``files`` and what is on disk (empty if identical)."""
    problems = []
    lockfile = area / "lockfile"
    if not lockfile.is_file():
        problems.append(f"{lockfile}: missing")
    elif lockfile.stat().st_size:
        problems.append(f"{lockfile}: not empty")
    for name, data in files.items():
        path = area / name
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif path.read_bytes() != data:
            problems.append(f"{path}: differs from the generated file")
    for path in sorted(area.glob("*.wl")):
        if path.name not in files:
            problems.append(f"{path}: not part of the sample database")
    return problems


def main(argv: list[str] | None = None) -> int:
    # Any VR violation (too long, bad characters) is a bug in ENTRIES: fail.
    config.settings.writing_validation_mode = config.RAISE
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="data files path to write (default: %(default)s); the area is OUTPUT/" + AE_TITLE,
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only compare with the files on disk; exit 1 on a difference",
    )
    args = parser.parse_args(argv)
    area = args.output / AE_TITLE
    files = generate()
    if args.check:
        problems = check_area(area, files)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 1 if problems else 0
    write_area(area, files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
