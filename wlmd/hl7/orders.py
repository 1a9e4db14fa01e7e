"""An ORM^O01 / OMI^O23 message -> the orders it carries, checked before anything is written.

Message types (MSH-9): ORM^O01 (v2.3.1, IHE RAD-4/RAD-13) and OMI^O23
(v2.5.1). Each ORC starts an order group (its OBR, TQ1, ZDS, IPC follow it);
an ORM group is one worklist entry, an OMI group one entry per IPC (each
IPC is one Scheduled Procedure Step). PID/PV1 are shared by all groups.

Order control (ORC-1), as wlmd applies it:

- ``NW`` creates the entry; a repeated NW replaces it (same order identity);
- ``XO`` updates it (creates it when it is not there: the RIS's view wins);
- ``CA``, ``DC``, ``OC`` remove it; removing an order that is not there is
  accepted (AA, the text says so): a resent cancel is not an error;
- ``SC`` with ORC-5 ``CA``, ``DC`` or ``CM`` removes it, with another status
  (``SC``, ``IP``, ...) updates it as XO;
- anything else is refused (AE 103 on ORC-1).

Every required value is checked here, so that a refusal names the HL7 field
the RIS should fill (the first source of the mapping rule), not a DICOM tag.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from wlmd.hl7 import message as m
from wlmd.hl7.mapping import Reader, Rule, build_dataset
from wlmd.hl7.message import Hl7Error, Message

SUPPORTED = {("ORM", "O01"), ("OMI", "O23")}
REMOVING = {"CA", "DC", "OC"}
REMOVING_STATUS = {"CA", "DC", "CM"}
CONTROLS = {"NW", "XO", "SC", *REMOVING}
_GROUP_SEGMENTS = {"ORC", "OBR", "TQ1", "TQ2", "ZDS", "IPC", "NTE", "OBX", "DG1", "CTD", "BLG"}

#: keyword -> (what it is, for a reason); checked for entries that are written
_REQUIRED_FOR_PUT = {
    "PatientID": "the patient ID",
    "PatientName": "the patient name",
    "Modality": "the modality",
    "ScheduledProcedureStepStartDate": "the scheduled start (date and time)",
}
_TEXT_VRS = {"LT", "ST", "UT"}  # a backslash is text there (PS3.5 6.2)
_MAX = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "UI": 64, "DA": 8, "TM": 16}


@dataclass(frozen=True, slots=True)
class Order:
    control: str  # ORC-1
    remove: bool
    dataset: Dataset
    group: int  # 1-based order group (ORC) number


class _GroupReader(Reader):
    """Paths resolved in one order group first (and its one IPC), then message-wide."""

    def __init__(self, msg: Message, scope: dict[str, list[object]]) -> None:
        self.msg = msg
        self.scope = scope

    def _segment(self, path: str) -> tuple[object | None, int, int, int, int]:
        match = m._PATH.fullmatch(path)
        if match is None:
            raise ValueError(path)
        name, occurrence, number, repetition, component, sub = match.groups()
        found = self.scope.get(name) or self.msg.segments(name)
        k = int(occurrence or 1)
        segment = found[k - 1] if k <= len(found) else None
        return segment, int(number), int(repetition or 1), int(component or 1), int(sub or 1)

    def value(self, path: str) -> str:
        segment, number, repetition, component, sub = self._segment(path)
        if segment is None:
            return ""
        return self.msg.field_value(segment, number, repetition, component, sub)  # type: ignore[arg-type]

    def components(self, path: str) -> list[str]:
        segment, number, repetition, _, _ = self._segment(path)
        if segment is None:
            return []
        return [
            self.msg.field_value(segment, number, repetition, c)  # type: ignore[arg-type]
            for c in range(1, 8)
        ]


def message_type(msg: Message) -> tuple[str, str]:
    kind, trigger = msg.header.component(9, 1), msg.header.component(9, 2)
    if (kind, trigger) not in SUPPORTED:
        code = m.UNSUPPORTED_EVENT_CODE if kind in ("ORM", "OMI") else m.UNSUPPORTED_MESSAGE_TYPE
        raise Hl7Error(
            "AR",
            code,
            "MSH-9",
            (f"message type {kind}^{trigger} is not taken here: send ORM^O01 or OMI^O23"),
        )
    return kind, trigger


def orders_of(
    msg: Message, rules: Mapping[str, Rule], station_defaults: Mapping[str, str]
) -> list[Order]:
    """The orders of ``msg``; Hl7Error for the first thing that keeps one from being applied."""
    kind, _ = message_type(msg)
    if not msg.header.get(10):
        raise Hl7Error("AR", m.REQUIRED_FIELD_MISSING, "MSH-10", "the message control ID is empty")
    version = msg.header.component(12, 1)
    if version and not version.startswith("2."):
        raise Hl7Error("AR", m.UNSUPPORTED_VERSION_ID, "MSH-12", f"version {version} is not HL7 v2")
    if not msg.has("PID"):
        raise Hl7Error(
            "AR", m.SEGMENT_SEQUENCE_ERROR, "PID", "no PID segment: the patient is missing"
        )
    groups = _groups(msg)
    if not groups:
        raise Hl7Error(
            "AR", m.SEGMENT_SEQUENCE_ERROR, "ORC", "no ORC segment: no order in the message"
        )
    orders = []
    for number, group in enumerate(groups, 1):
        orc = group["ORC"][0]
        control = msg.field_value(orc, 1).upper()  # type: ignore[arg-type]
        if control not in CONTROLS:
            raise Hl7Error(
                "AE",
                m.TABLE_VALUE_NOT_FOUND,
                "ORC-1",
                (
                    f"order control {control or '(empty)'!r} in order group {number} is not "
                    "supported: send NW, XO, CA, DC, OC or SC"
                ),
            )
        status = msg.field_value(orc, 5).upper()  # type: ignore[arg-type]
        remove = control in REMOVING or (control == "SC" and status in REMOVING_STATUS)
        if kind == "ORM" and not group.get("OBR"):
            raise Hl7Error(
                "AR", m.SEGMENT_SEQUENCE_ERROR, "OBR", f"order group {number} has no OBR"
            )
        steps = group.get("IPC") or [None]
        if kind == "OMI" and steps == [None]:
            raise Hl7Error(
                "AR",
                m.SEGMENT_SEQUENCE_ERROR,
                "IPC",
                (f"OMI^O23 order group {number} has no IPC: the procedure steps are missing"),
            )
        for ipc in steps:
            scope = dict(group)
            if ipc is not None:
                scope["IPC"] = [ipc]
            ds = build_dataset(rules, _GroupReader(msg, scope))
            _check(ds, rules, station_defaults, remove, number, set(msg.segment_names))
            orders.append(Order(control, remove, ds, number))
    return orders


def _groups(msg: Message) -> list[dict[str, list[object]]]:
    groups: list[dict[str, list[object]]] = []
    for segment in msg.parsed:
        name = str(segment[0])
        if name == "ORC":
            groups.append({"ORC": [segment]})
        elif groups and name in _GROUP_SEGMENTS:
            groups[-1].setdefault(name, []).append(segment)
    return groups


def _where(rules: Mapping[str, Rule], present: set[str], keyword: str) -> str:
    """The field the rule reads first among the segments the message has."""
    paths = [s.path for s in (rules[keyword].sources if keyword in rules else ()) if s.path]
    fields = [p.split(".")[0].split("[")[0] for p in paths]
    for field in fields:
        if field[:3] in present:
            return field
    return fields[0] if fields else ""


def _check(
    ds: Dataset,
    rules: Mapping[str, Rule],
    defaults: Mapping[str, str],
    remove: bool,
    group: int,
    present: set[str],
) -> None:
    sps = ds.ScheduledProcedureStepSequence[0]
    accession = str(ds.get("AccessionNumber", "") or "")
    identified = accession or (ds.get("StudyInstanceUID") and sps.get("ScheduledProcedureStepID"))
    if not identified:
        raise Hl7Error(
            "AE",
            m.REQUIRED_FIELD_MISSING,
            _where(rules, present, "AccessionNumber"),
            (
                f"order group {group} has no accession number (OBR-18 / IPC-1), nor a Study "
                "Instance UID (ZDS-1 / IPC-3) with an SPS ID (OBR-20 / IPC-4): it could not be "
                "found again for XO or CA"
            ),
        )
    if remove:
        return
    for keyword, what in _REQUIRED_FOR_PUT.items():
        holder = sps if keyword in ("Modality", "ScheduledProcedureStepStartDate") else ds
        if not str(holder.get(keyword, "") or ""):
            raise Hl7Error(
                "AE",
                m.REQUIRED_FIELD_MISSING,
                _where(rules, present, keyword),
                (f"{what} is empty in order group {group} ({keyword})"),
            )
    if not sps.get("ScheduledProcedureStepStartTime"):
        sps.ScheduledProcedureStepStartTime = "000000"
    if not sps.get("ScheduledStationAETitle"):
        station = defaults.get(str(sps.Modality))
        if not station:
            raise Hl7Error(
                "AE",
                m.REQUIRED_FIELD_MISSING,
                _where(rules, present, "ScheduledStationAETitle"),
                (
                    f"no scheduled station AE title for order group {group} (IPC-9 / ORC-18) "
                    f"and no --hl7-station-default for modality {sps.Modality}"
                ),
            )
        sps.ScheduledStationAETitle = station
    if not ds.get("RequestedProcedureDescription") and not ds.get("RequestedProcedureCodeSequence"):
        raise Hl7Error(
            "AE",
            m.REQUIRED_FIELD_MISSING,
            _where(rules, present, "RequestedProcedureDescription"),
            (f"the requested procedure (OBR-4) is empty in order group {group}"),
        )
    for keyword, element in _values(ds):
        where = _where(rules, present, keyword)
        if element.VM > 1 and element.VR not in _TEXT_VRS:
            # HL7 \E\ unescaped to "\", DICOM's value delimiter (PS3.5 6.4): it would
            # split the value in two, so the RIS is asked to leave it out
            raise Hl7Error(
                "AE",
                m.DATA_TYPE_ERROR,
                where,
                (
                    f"{element.keyword} in order group {group} holds a backslash (\\E\\), "
                    f"which DICOM {element.VR} cannot carry"
                ),
            )
        limit = _MAX.get(element.VR)
        if limit and isinstance(element.value, str) and len(element.value) > limit:
            raise Hl7Error(
                "AE",
                m.DATA_TYPE_ERROR,
                where,
                (
                    f"{element.keyword} in order group {group} is longer than {limit} "
                    f"characters (DICOM {element.VR})"
                ),
            )


def _values(ds: Dataset, outer: str = "") -> Iterator[tuple[str, DataElement]]:
    """Every element that is not a sequence, in the items too, with its rule's keyword
    (``Sequence.Keyword`` in a code sequence; SPS attributes by their own)."""
    for element in ds:
        if element.VR == "SQ":
            inner = "" if element.keyword == "ScheduledProcedureStepSequence" else element.keyword
            for item in element.value:
                yield from _values(item, inner)
        else:
            yield (f"{outer}.{element.keyword}" if outer else element.keyword), element
