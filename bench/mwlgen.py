"""Synthetic worklist databases for the benchmark: N complete ``.wl`` files, reproducibly.

Every entry ``i`` of a database is a function of (seed, i, base date) only: its own
``random.Random`` is seeded from ``"{seed}/{i}"``, so one entry can be rebuilt
without the others (the visibility measurement rewrites one). Patient IDs and
accession numbers are affine bijections of ``i`` (unique, not in file order).

Each entry has every Return Key Type 1 attribute of PS3.4 Table K.6-1 (what
``tests/helpers/worklists.complete_entry`` has, plus a few realistic extras), so
wlmscpfs serves it with its default ``--enable-file-reject``. Names are
Family^Given in three groups: ASCII (no Specific Character Set), Latin-1
(``ISO_IR 100``) and UTF-8 (``ISO_IR 192``, names outside Latin-1: Polish, Czech,
Turkish, Vietnamese, Greek, Cyrillic, …).

Files are encoded here, not by pydicom: explicit VR little endian, defined lengths,
elements in tag order, a Part 10 header (preamble, ``DICM``, group 0002). pydicom's
data dictionary supplies tags and VRs; the smoke test reads generated files back
with pydicom. 100,000 files take some seconds, not minutes.

A database lives in ``<workdir>/<N>/WLMD/`` (with ``lockfile``) next to a stamp
``<workdir>/<N>/bench-db.json`` holding the key (N, seed, generator version, base
date) and the query values drawn from the data. A database whose stamp matches is
reused; anything else (missing, different key, ``dirty`` marker left by an
interrupted visibility measurement) is generated again, into a temporary directory
renamed into place at the end.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import random
import shutil
import struct
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

GENERATOR_VERSION = 1
AREA = "WLMD"
STAMP = "bench-db.json"
DIRTY = "dirty"
#: Queries of each kind drawn from the data (samples cycle through them).
POOL_SIZE = 64
#: File name prefix of entries the benchmark adds (and removes) while measuring.
VISIBILITY_PREFIX = "zzbench-"

MWL_FIND = "1.2.840.10008.5.1.4.31"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLEMENTATION_CLASS_UID = f"2.25.{uuid.uuid5(uuid.NAMESPACE_URL, 'urn:wlmd:bench:mwlgen').int}"
IMPLEMENTATION_VERSION = "WLMD_BENCH_1"

# --------------------------------------------------------------------------- vocabulary


def _words(text: str) -> list[str]:
    return text.split()


ASCII_FAMILY = _words(
    """Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin
Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott
Hill Green Adams Baker Nelson Carter Mitchell Roberts Turner Phillips Campbell Parker
Evans Edwards Collins Stewart Morris Murphy Cook Rogers Morgan Cooper Peterson Reed Bailey
Bell Kelly Howard Ward Cox Richardson Wood Watson Brooks Bennett Gray Hughes Price Sanders
Myers Long Ross Foster Powell Jenkins Perry Russell Sullivan Fisher Schmidt Schneider
Fischer Weber Meyer Wagner Becker Schulz Hoffmann Koch Richter Klein Wolf Neumann Schwarz
Zimmermann Braun Hofmann Hartmann Lange Schmitt Werner Krause Meier Lehmann Schmid Schulze
Maier Kaiser Fuchs Peters Lang Scholz Rossi Russo Ferrari Esposito Bianchi Romano Colombo
Ricci Marino Greco Bruno Gallo Conti DeLuca Costa Giordano Mancini Rizzo Lombardi Moretti
Janssen DeJong DeVries Bakker Visser Smit Meijer DeBoer Mulder Bos Vos Peeters Maes Jacobs
Mertens Willems Claes Goossens Wouters Dubois Lambert Bernard Durand Moreau Laurent Simon
Michel Garcia Rousseau Blanc Guerin Boyer Andersen Nielsen Hansen Pedersen Larsen Olsen
Johansson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson Tanaka
Suzuki Takahashi Watanabe Ito Yamamoto Nakamura Kobayashi Kato Sato Kim Lee Park Choi Jung
Kang Cho Yoon Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Singh Kumar Sharma Patel
Gupta Khan Shah Mehta Reddy Iyer Okafor Mensah Okeke Adeyemi Diallo Traore Nkosi Dlamini
O'Brien O'Connor McCarthy MacDonald Fitzgerald Doherty Kennedy Lynch Murray Quinn Walsh
Byrne Ryan"""
)

ASCII_GIVEN_M = _words(
    """James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel
Matthew Anthony Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy
Ronald Edward Jason Jeffrey Ryan Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin
Scott Brandon Benjamin Samuel Gregory Alexander Frank Patrick Raymond Jack Dennis Jerry
Peter Hans Klaus Stefan Wolfgang Markus Lukas Felix Jan Pieter Lars Erik Marco Luca
Giovanni Hiroshi Kenji Min Wei Raj Arjun Kwame Ahmed Omar Liam Noah Oliver Elijah Henry
Sebastian Mateo Leo Hugo Louis Tobias Emil Oskar Sean Declan"""
)

ASCII_GIVEN_F = _words(
    """Mary Patricia Jennifer Linda Elizabeth Barbara Susan Jessica Sarah Karen Lisa Nancy Betty
Margaret Sandra Ashley Kimberly Emily Donna Michelle Carol Amanda Dorothy Melissa Deborah
Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Angela Shirley Anna Brenda Pamela Emma
Nicole Helen Samantha Katherine Christine Debra Rachel Carolyn Janet Catherine Maria
Heather Diane Ruth Julie Olivia Joyce Virginia Victoria Kelly Lauren Christina Joan Evelyn
Judith Megan Andrea Cheryl Hannah Jacqueline Martha Gloria Teresa Ann Sara Madison Frances
Kathryn Janice Jean Abigail Alice Julia Judy Sophia Grace Denise Amber Doris Marilyn
Danielle Beverly Isabella Theresa Diana Natalie Charlotte Marie Kayla Ingrid Sabine Petra
Yuki Mei Priya Aisha Fatima Siobhan Niamh"""
)

LATIN1_FAMILY = [
    w.replace("_", " ")
    for w in _words(
        """Müller Schröder Böhm Weiß Günther Jäger Köhler Krüger Gräf Möller Bäcker
Lefèvre Gérard Bélanger Lemaître Garçon Bézier Crépin Fréchette Lévesque Thériault Côté Gagné
Muñoz Peña Núñez Ibáñez Martínez Rodríguez Sánchez Gómez Fernández Pérez González López Jiménez
Álvarez Hernández Ramírez Gonçalves Magalhães Conceição Simões Guimarães Brandão Falcão
Sørensen Jørgensen Ødegård Åberg Ångström Björk Söderberg Lindström Nyström Löfgren Mäkinen
Hämäläinen Järvinen Ó_Briain Þórsson Guðmundsdóttir Pálsson"""
    )
]

LATIN1_GIVEN_M = _words(
    """Jürgen Jörg Günter Björn Sören Jörn Uwe Rüdiger José Jesús Andrés Ramón Iñigo Joaquín
Martín João Gonçalo Sebastião Øystein Søren Bård Håkon Örjan Jérôme Stéphane Frédéric
André Benoît François Hélio Sigurður Ólafur"""
)

LATIN1_GIVEN_F = _words(
    """Hélène Françoise Amélie Chloé Léa Zoë Renée Céline Sofía María Inés Lucía Begoña Conceição
Márcia Åsa Märta Ingrid Jördis Gudrún Sólveig Ágata Inês Annegret Dörte Bärbel Käthe Agnès
Noémie"""
)

UTF8_FAMILY = _words(
    """Łukasiewicz Wałęsa Świątek Wiśniewski Dąbrowski Kołodziej Żurawski Dvořák Černý Procházka
Kučera Veselý Horák Němec Růžička Štěpánek Yılmaz Şahin Çelik Doğan Öztürk Aydın Nguyễn
Trần Lê Phạm Hoàng Đặng Παπαδόπουλος Οικονόμου Γεωργίου Иванов Смирнов Кузнецов Попов
Шевченко Țăranu Ștefănescu Bērziņš Kalniņš Ozoliņš Žukauskas Kovács Szőke Tóth Szűcs Győri
Ilić Đorđević Kovačević"""
)

UTF8_GIVEN_M = _words(
    """Łukasz Wojciech Paweł Michał Jiří Tomáš Petr Zdeněk Mehmet Çağrı Minh Dũng Hùng Γιώργος
Νίκος Олег Дмитрий Сергей Ștefan Jānis Gábor Ödön Miloš Dražen"""
)

UTF8_GIVEN_F = _words(
    """Małgorzata Agnieszka Jiřina Lucie Věra Ayşe Fatma Gülşen Thị Ngọc Hương Μαρία Ελένη Анна
Ольга Ioana Līga Zsófia Erzsébet Dóra Jelena Ružica"""
)

#: (group, Specific Character Set value or None, encoding, families, male, female, weight)
NAME_GROUPS: tuple[tuple[str, str | None, str, list[str], list[str], list[str], float], ...] = (
    ("ascii", None, "ascii", ASCII_FAMILY, ASCII_GIVEN_M, ASCII_GIVEN_F, 0.60),
    ("latin1", "ISO_IR 100", "latin-1", LATIN1_FAMILY, LATIN1_GIVEN_M, LATIN1_GIVEN_F, 0.25),
    ("utf8", "ISO_IR 192", "utf-8", UTF8_FAMILY, UTF8_GIVEN_M, UTF8_GIVEN_F, 0.15),
)

MODALITIES: tuple[tuple[str, float, int, tuple[str, ...]], ...] = (
    # modality, weight, stations, procedure descriptions
    ("CT", 0.20, 6, ("CT HEAD W/O CONTRAST", "CT CHEST W CONTRAST", "CT ABDOMEN PELVIS",
                     "CT ANGIO PULMONARY", "CT SPINE LUMBAR")),
    ("MR", 0.15, 4, ("MR BRAIN W/O CONTRAST", "MR KNEE LEFT", "MR LUMBAR SPINE",
                     "MR CARDIAC", "MR PROSTATE")),
    ("US", 0.15, 5, ("US ABDOMEN COMPLETE", "US THYROID", "US OBSTETRIC", "US CAROTID DOPPLER")),
    ("CR", 0.18, 5, ("XR CHEST PA LAT", "XR HAND RIGHT", "XR KNEE 2 VIEWS", "XR PELVIS AP")),
    ("DX", 0.12, 4, ("DX CHEST AP PORTABLE", "DX ANKLE LEFT", "DX SKULL")),
    ("MG", 0.08, 3, ("MG SCREENING BILATERAL", "MG DIAGNOSTIC RIGHT")),
    ("NM", 0.04, 2, ("NM BONE SCAN WHOLE BODY", "NM THYROID UPTAKE", "NM MYOCARDIAL PERFUSION")),
    ("XA", 0.08, 3, ("XA CORONARY ANGIOGRAPHY", "XA CEREBRAL ANGIOGRAPHY")),
)  # fmt: skip
STATIONS = {m: [f"{m}{k:02d}" for k in range(1, count + 1)] for m, _, count, _ in MODALITIES}
#: 32 scheduled station AE titles in all.
PRIORITIES = (("ROUTINE", 0.8), ("HIGH", 0.12), ("STAT", 0.05), ("LOW", 0.03))
DAYS = 30  # SPS start dates: base date ± DAYS
TIMES = [f"{h:02d}{m:02d}00" for h in range(7, 20) for m in (0, 15, 30, 45)]
PID_MUL, PID_MOD = 7_654_321, 10**8  # bijections of i (multipliers coprime to the moduli)
ACC_MUL, ACC_MOD = 48_271_003, 10**9


# --------------------------------------------------------------------------- one entry


@dataclass
class Entry:
    """The values of one synthetic worklist entry (text as Python str)."""

    index: int
    group: str
    charset: str | None
    encoding: str
    patient_name: str
    patient_id: str
    accession: str
    birth_date: str
    sex: str
    modality: str
    station: str
    station_name: str
    date: str
    time: str
    description: str
    referring: str
    requesting: str
    performing: str
    study_uid: str
    sop_instance_uid: str
    priority: str

    @property
    def file_name(self) -> str:
        return f"wl{self.index:07d}.wl"


def _weighted(rng: random.Random, items: list[tuple[Any, float]]) -> Any:
    x = rng.random() * sum(w for _, w in items)
    for item, weight in items:
        x -= weight
        if x < 0:
            return item
    return items[-1][0]


_GROUPS = [(g, g[6]) for g in NAME_GROUPS]
_MODS = [(m, m[1]) for m in MODALITIES]


def _name(rng: random.Random, group: tuple[Any, ...], sex: str | None = None) -> str:
    families, male, female = group[3], group[4], group[5]
    sex = sex or rng.choice("MF")
    return f"{rng.choice(families)}^{rng.choice(male if sex == 'M' else female)}"


def make_entry(seed: int, index: int, base: dt.date) -> Entry:
    """Entry ``index`` of the database (seed, base date): a pure function of the three."""
    rng = random.Random(f"{seed}/{index}")
    group = _weighted(rng, _GROUPS)
    sex = rng.choice("MF")
    modality, _, _, descriptions = _weighted(rng, _MODS)
    station = rng.choice(STATIONS[modality])
    day = base + dt.timedelta(days=rng.randint(-DAYS, DAYS))
    born = dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(90 * 365))
    offset = seed * 1_000_003
    return Entry(
        index=index,
        group=group[0],
        charset=group[1],
        encoding=group[2],
        patient_name=_name(rng, group, sex),
        patient_id=f"P{(index * PID_MUL + offset) % PID_MOD:08d}",
        accession=f"A{(index * ACC_MUL + offset) % ACC_MOD:09d}",
        birth_date=born.strftime("%Y%m%d"),
        sex=sex,
        modality=modality,
        station=station,
        station_name=f"{modality} ROOM {station[-2:].lstrip('0')}",
        date=day.strftime("%Y%m%d"),
        time=rng.choice(TIMES),
        description=rng.choice(descriptions),
        referring=_name(rng, group),
        requesting=_name(rng, group),
        performing=_name(rng, group),
        study_uid=f"2.25.{rng.getrandbits(127)}",
        sop_instance_uid=f"2.25.{rng.getrandbits(127)}",
        priority=_weighted(rng, list(PRIORITIES)),
    )


# --------------------------------------------------------------------------- encoding

_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"SQ", b"UC", b"UR", b"UT", b"UN"}


def _tag(keyword: str) -> tuple[int, int, bytes]:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag >> 16, tag & 0xFFFF, dictionary_VR(tag).encode("ascii")


def _element(spec: tuple[int, int, bytes], value: bytes) -> bytes:
    group, elem, vr = spec
    if len(value) % 2:
        value += b"\0" if vr in (b"UI", b"OB") else b" "
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHL", group, elem, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, elem, vr, len(value)) + value


def _item(content: bytes) -> bytes:
    return struct.pack("<HHL", 0xFFFE, 0xE000, len(content)) + content


# Attribute specs in tag order (the order the encoder writes them in).
T = {
    k: _tag(k)
    for k in _words(
        """
    SpecificCharacterSet AccessionNumber ReferringPhysicianName ReferencedStudySequence
    ReferencedPatientSequence PatientName PatientID IssuerOfPatientID PatientBirthDate
    PatientSex StudyInstanceUID RequestingPhysician RequestedProcedureDescription
    AdmissionID ScheduledProcedureStepSequence Modality ScheduledStationAETitle
    ScheduledProcedureStepStartDate ScheduledProcedureStepStartTime
    ScheduledPerformingPhysicianName ScheduledProcedureStepDescription
    ScheduledProcedureStepID ScheduledStationName ScheduledProcedureStepLocation
    ScheduledProcedureStepStatus RequestedProcedureID RequestedProcedurePriority
    FileMetaInformationGroupLength FileMetaInformationVersion MediaStorageSOPClassUID
    MediaStorageSOPInstanceUID TransferSyntaxUID ImplementationClassUID
    ImplementationVersionName
        """
    )
}


def encode_entry(e: Entry) -> bytes:
    """The Part 10 file of ``e``: explicit VR little endian, defined lengths."""
    enc = e.encoding

    def text(keyword: str, value: str) -> bytes:
        return _element(T[keyword], value.encode(enc))

    sps = b"".join(
        (
            text("Modality", e.modality),
            text("ScheduledStationAETitle", e.station),
            text("ScheduledProcedureStepStartDate", e.date),
            text("ScheduledProcedureStepStartTime", e.time),
            text("ScheduledPerformingPhysicianName", e.performing),
            text("ScheduledProcedureStepDescription", e.description),
            text("ScheduledProcedureStepID", f"S{e.index + 1:08d}"),
            text("ScheduledStationName", e.station_name),
            text("ScheduledProcedureStepLocation", f"FLOOR {1 + e.index % 4}"),
            text("ScheduledProcedureStepStatus", "SCHEDULED"),
        )
    )
    body = b"".join(
        (
            text("SpecificCharacterSet", e.charset) if e.charset else b"",
            text("AccessionNumber", e.accession),
            text("ReferringPhysicianName", e.referring),
            _element(T["ReferencedStudySequence"], b""),
            _element(T["ReferencedPatientSequence"], b""),
            text("PatientName", e.patient_name),
            text("PatientID", e.patient_id),
            text("IssuerOfPatientID", "HOSP_A"),
            text("PatientBirthDate", e.birth_date),
            text("PatientSex", e.sex),
            text("StudyInstanceUID", e.study_uid),
            text("RequestingPhysician", e.requesting),
            text("RequestedProcedureDescription", e.description),
            text("AdmissionID", f"ADM{e.index + 1:08d}"),
            _element(T["ScheduledProcedureStepSequence"], _item(sps)),
            text("RequestedProcedureID", f"R{e.index + 1:08d}"),
            text("RequestedProcedurePriority", e.priority),
        )
    )
    meta = b"".join(
        (
            _element(T["FileMetaInformationVersion"], b"\0\1"),
            _element(T["MediaStorageSOPClassUID"], MWL_FIND.encode()),
            _element(T["MediaStorageSOPInstanceUID"], e.sop_instance_uid.encode()),
            _element(T["TransferSyntaxUID"], EXPLICIT_LE.encode()),
            _element(T["ImplementationClassUID"], IMPLEMENTATION_CLASS_UID.encode()),
            _element(T["ImplementationVersionName"], IMPLEMENTATION_VERSION.encode()),
        )
    )
    head = _element(T["FileMetaInformationGroupLength"], struct.pack("<L", len(meta)))
    return bytes(128) + b"DICM" + head + meta + body


# --------------------------------------------------------------------------- queries


def query_pools(seed: int, n: int, base: dt.date, today_stations: list[str]) -> dict[str, Any]:
    """Selective query values drawn from the data: ``{kind: [keys, …]}`` (POOL_SIZE each).

    ``keys`` maps a keyword to a matching value; SPS keys are applied in the
    Scheduled Procedure Step item by the client.
    """
    rng = random.Random(f"{seed}/queries")
    targets = [make_entry(seed, i, base) for i in rng.sample(range(n), min(POOL_SIZE, n))]
    ascii_targets = [e for e in targets if e.group == "ascii"] or targets[:1]
    today = base.strftime("%Y%m%d")
    stations = today_stations or [targets[0].station]
    pools: dict[str, list[dict[str, str]]] = {
        "patient_id": [{"PatientID": e.patient_id} for e in targets],
        "accession": [{"AccessionNumber": e.accession} for e in targets],
        "station_today": [
            {
                "ScheduledStationAETitle": rng.choice(stations),
                "ScheduledProcedureStepStartDate": today,
            }
            for _ in range(min(POOL_SIZE, n))
        ],
        "modality_range": [
            {
                "Modality": e.modality,
                "ScheduledProcedureStepStartDate": f"{e.date}-{_next_day(e.date)}",
            }
            for e in targets
        ],
        "name_wildcard": [{"PatientName": _wildcard(e.patient_name)} for e in ascii_targets],
    }
    return pools


def _next_day(date: str) -> str:
    day = dt.datetime.strptime(date, "%Y%m%d").date() + dt.timedelta(days=1)
    return day.strftime("%Y%m%d")


def _wildcard(name: str) -> str:
    family, given = name.split("^", 1)
    return f"{family}^{given[: max(3, len(given) - 2)]}*"


# --------------------------------------------------------------------------- database


@dataclass
class Database:
    root: Path  # the data files path (-dfp)
    area: Path  # root / AREA
    n: int
    seed: int
    base: dt.date
    queries: dict[str, list[dict[str, str]]]
    generated_s: float | None  # None: reused from the cache
    file_bytes: int


def _stamp_key(n: int, seed: int, base: dt.date) -> dict[str, Any]:
    return {"n": n, "seed": seed, "generator": GENERATOR_VERSION, "date": base.isoformat()}


def ensure_database(
    workdir: Path,
    n: int,
    seed: int,
    base: dt.date,
    progress: Callable[[str], None] = lambda _msg: None,
) -> Database:
    """The database for (n, seed, base) under ``workdir``, generated if not cached."""
    root = workdir / str(n)
    stamp_path = root / STAMP
    key = _stamp_key(n, seed, base)
    if stamp_path.is_file() and not (root / DIRTY).exists():
        try:
            stamp = json.loads(stamp_path.read_text())
        except (OSError, ValueError):
            stamp = {}
        if stamp.get("key") == key:
            remove_leftovers(root / AREA)
            return Database(
                root, root / AREA, n, seed, base, stamp["queries"], None, stamp["file_bytes"]
            )
    started = time.monotonic()
    tmp = workdir / f".{n}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    area = tmp / AREA
    area.mkdir(parents=True)
    (area / "lockfile").touch()
    today = base.strftime("%Y%m%d")
    today_stations: list[str] = []
    total = 0
    for i in range(n):
        entry = make_entry(seed, i, base)
        data = encode_entry(entry)
        total += len(data)
        fd = os.open(area / entry.file_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        if entry.date == today:
            today_stations.append(entry.station)
        if i and i % 20000 == 0:
            progress(f"generated {i}/{n} files")
    queries = query_pools(seed, n, base, today_stations)
    stamp = {"key": key, "queries": queries, "file_bytes": total}
    (tmp / STAMP).write_text(json.dumps(stamp, indent=1, ensure_ascii=False) + "\n")
    shutil.rmtree(root, ignore_errors=True)
    os.rename(tmp, root)
    elapsed = time.monotonic() - started
    return Database(root, root / AREA, n, seed, base, queries, elapsed, total)


def remove_leftovers(area: Path) -> None:
    """Remove entries a previous (interrupted) benchmark added, under the write lock."""
    names = [p for p in area.iterdir() if p.name.startswith(VISIBILITY_PREFIX)]
    if names:
        with write_locked(area):
            for path in names:
                path.unlink(missing_ok=True)


class write_locked:
    """Hold the storage area's exclusive fcntl lock (the lockfile protocol)."""

    def __init__(self, area: Path) -> None:
        self.path = area / "lockfile"
        self.fd = -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR)
        fcntl.lockf(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.lockf(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def put_file(area: Path, name: str, data: bytes) -> None:
    """Write ``name`` by the lockfile protocol: lock, temporary name, rename, unlock."""
    tmp = area / f".{name}.tmp"
    with write_locked(area):
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.rename(tmp, area / name)


def main(argv: list[str]) -> int:
    """``python bench/mwlgen.py N [SEED] [WORKDIR]``: generate (or reuse) one database."""
    n = int(argv[0])
    seed = int(argv[1]) if len(argv) > 1 else 1
    workdir = Path(argv[2] if len(argv) > 2 else "bench/out/db")
    workdir.mkdir(parents=True, exist_ok=True)
    db = ensure_database(workdir, n, seed, dt.date.today(), lambda m: print(m, file=sys.stderr))
    print(f"{db.area}: {n} files, {db.file_bytes} bytes, generated in {db.generated_s} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
