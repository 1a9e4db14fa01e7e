"""HL7 messages for the unit tests, built field by field (numbers as the standard counts them)."""

from __future__ import annotations

from collections.abc import Mapping

Fields = Mapping[int, str]


def segment(name: str, fields: Fields) -> str:
    """``name|f1|f2...``; for MSH the fields start at MSH-2 (MSH-1 is the ``|`` itself)."""
    last = max(fields, default=1)
    first = 2 if name == "MSH" else 1
    return "|".join([name, *(fields.get(i, "") for i in range(first, last + 1))])


def message(*segments: tuple[str, Fields], encoding: str = "ascii") -> bytes:
    return "\r".join(segment(name, fields) for name, fields in segments).encode(encoding)


def msh(kind: str = "ORM^O01", version: str = "2.3.1", charset: str = "", **more: str) -> Fields:
    fields = {2: "^~\\&", 3: "RIS", 4: "HOSP", 5: "WLMD", 6: "RAD", 7: "20261202083000"}
    fields.update({9: kind, 10: more.get("control_id", "C0001"), 11: "P", 12: version})
    if charset:
        fields[18] = charset
    return fields


#: An ORM^O01 v2.3.1 order as IHE RAD-4 has it (ORC-7 timing, OBR placer/filler fields, ZDS).
ORM_PID = {3: "PAT1^^^HOSP^MR~ALT9^^^OTHER^PI", 5: "Doe^John^Q^Jr^Dr", 7: "19600102", 8: "M"}
ORM_PV1 = {2: "O", 8: "REF1^Referrer^Rita", 19: "V77"}
ORM_ORC = {1: "NW", 2: "PL1", 3: "FI1", 5: "SC", 7: "^^^20261202093000^^S", 18: "CT01"}
ORM_OBR = {
    1: "1",
    2: "PL1",
    3: "FI1",
    4: "CTHEAD^CT Head^LOCAL",
    16: "ORD1^Orderer^Otto",
    18: "ACC1",
    19: "RP1",
    20: "SPS1",
    24: "CT",
    31: "^Headache",
}
ORM_ZDS = {1: "1.2.826.0.1.3680043.10.543.1^RIS^Application^DICOM"}

#: An OMI^O23 v2.5.1 order (TQ1 timing, one IPC per procedure step).
OMI_ORC = {1: "NW", 2: "PL2", 3: "FI2", 5: "SC", 12: "ORD2^Kaiser^Klara"}
OMI_TQ1 = {1: "1", 7: "20261203101500", 9: "R"}
OMI_OBR = {1: "1", 2: "PL2", 3: "FI2", 4: "MRKNEE^MR Knee^L"}
OMI_IPC = {
    1: "ACC2",
    2: "RP2",
    3: "1.2.826.0.1.3680043.10.543.2",
    4: "SPS2A",
    5: "MR",
    6: "T1^Knee T1^L",
    7: "MRSTATION1",
    8: "MR Room 2",
    9: "MR01",
}


def orm(
    *,
    charset: str = "",
    encoding: str = "ascii",
    control_id: str = "C0001",
    pid: Fields | None = None,
    orc: Fields | None = None,
    obr: Fields | None = None,
    zds: Fields | None = ORM_ZDS,
    extra: tuple[tuple[str, Fields], ...] = (),
) -> bytes:
    """The ORM^O01 above; a given mapping of fields is merged over the default one."""
    segments = [
        ("MSH", msh("ORM^O01", "2.3.1", charset, control_id=control_id)),
        ("PID", {**ORM_PID, **(pid or {})}),
        ("PV1", ORM_PV1),
        ("ORC", {**ORM_ORC, **(orc or {})}),
        ("OBR", {**ORM_OBR, **(obr or {})}),
    ]
    if zds is not None:
        segments.append(("ZDS", zds))
    return message(*segments, *extra, encoding=encoding)


def omi(
    *,
    charset: str = "UNICODE UTF-8",
    encoding: str = "utf-8",
    control_id: str = "C0002",
    pid: Fields | None = None,
    orc: Fields | None = None,
    tq1: Fields | None = OMI_TQ1,
    ipcs: tuple[Fields, ...] = (OMI_IPC,),
) -> bytes:
    segments = [
        ("MSH", msh("OMI^O23^OMI_O23", "2.5.1", charset, control_id=control_id)),
        ("PID", {**ORM_PID, **(pid or {})}),
        ("PV1", ORM_PV1),
        ("ORC", {**OMI_ORC, **(orc or {})}),
    ]
    if tq1 is not None:
        segments.append(("TQ1", tq1))
    segments.append(("OBR", OMI_OBR))
    segments += [("IPC", ipc) for ipc in ipcs]
    return message(*segments, encoding=encoding)
