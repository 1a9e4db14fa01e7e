"""HL7 fields -> worklist attributes: a small declarative rule format.

One rule a line, ``Keyword = SOURCE [| SOURCE ...] [as TRANSFORM]``:

- ``Keyword`` is a DICOM keyword. Keywords of the Scheduled Procedure Step
  (Modality, ScheduledStationAETitle, ...) go into its one item;
  ``Sequence.Keyword`` puts a value into the (one) item of that sequence
  (``RequestedProcedureCodeSequence.CodeValue``).
- A SOURCE is an HL7 path (``PID-3.1``, ``PID-3[2].1`` for a repetition,
  ``ZDS-1``) or a literal in quotes (``'ROUTINE'``); the first non-empty
  source wins. An empty right-hand side drops the attribute.
- TRANSFORM: ``name`` (an XPN, family^given^middle^suffix^prefix, to a DICOM
  PN, family^given^middle^prefix^suffix), ``person`` (an XCN: the same after
  its ID component), ``date`` / ``time`` (an HL7 TS to DA / TM), ``sex``
  (M, F, O; others empty), ``priority`` (HL7 priority S/A/R/P/T to STAT,
  HIGH, ROUTINE, LOW, ...), ``text`` (the default: the value unescaped).

:data:`DEFAULT_RULES` is IHE RAD-4 / RAD-13's mapping (dcm4chee-arc's
defaults: ORM^O01 v2.3.1 fields and OMI^O23 v2.5.1 IPC fields side by
side); a site's ``--hl7-mapping`` file uses the same format and overrides
the keywords it names, one by one. Pure: no files are written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from wlmd.hl7.message import CHARSETS

DEFAULT_RULES = """\
SpecificCharacterSet = MSH-18 as charset
PatientID = PID-3.1
IssuerOfPatientID = PID-3.4
PatientName = PID-5 as name
PatientBirthDate = PID-7 as date
PatientSex = PID-8 as sex
AdmissionID = PV1-19
ReferringPhysicianName = PV1-8 as person
PlacerOrderNumberImagingServiceRequest = ORC-2.1
FillerOrderNumberImagingServiceRequest = ORC-3.1
AccessionNumber = IPC-1 | OBR-18
RequestedProcedureID = IPC-2 | OBR-19
StudyInstanceUID = IPC-3 | ZDS-1
RequestingPhysician = OBR-16 as person | ORC-12 as person
RequestedProcedureDescription = OBR-4.2 | OBR-4.5
RequestedProcedureCodeSequence.CodeValue = OBR-4.1
RequestedProcedureCodeSequence.CodingSchemeDesignator = OBR-4.3
RequestedProcedureCodeSequence.CodeMeaning = OBR-4.2
RequestedProcedurePriority = TQ1-9 as priority | ORC-7.6 as priority | OBR-27.6 as priority
ReasonForTheRequestedProcedure = OBR-31.2 | OBR-31.1
ScheduledProcedureStepID = IPC-4 | OBR-20
Modality = IPC-5 | OBR-24
ScheduledStationAETitle = IPC-9 | ORC-18.1
ScheduledStationName = IPC-7
ScheduledProcedureStepLocation = IPC-8
ScheduledProcedureStepStartDate = TQ1-7 as date|ORC-7.4 as date|OBR-27.4 as date|OBR-36 as date
ScheduledProcedureStepStartTime = TQ1-7 as time|ORC-7.4 as time|OBR-27.4 as time|OBR-36 as time
ScheduledProcedureStepDescription = IPC-6.2 | OBR-4.5 | OBR-4.2
ScheduledProtocolCodeSequence.CodeValue = IPC-6.1
ScheduledProtocolCodeSequence.CodingSchemeDesignator = IPC-6.3
ScheduledProtocolCodeSequence.CodeMeaning = IPC-6.2
"""

#: Attributes of the Scheduled Procedure Step item (PS3.4 Table K.6-1).
SPS_KEYWORDS = frozenset(
    {
        "ScheduledStationAETitle",
        "ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepStartTime",
        "Modality",
        "ScheduledPerformingPhysicianName",
        "ScheduledProcedureStepDescription",
        "ScheduledStationName",
        "ScheduledProcedureStepLocation",
        "PreMedication",
        "ScheduledProcedureStepID",
        "RequestedContrastAgent",
        "ScheduledProcedureStepStatus",
        "CommentsOnTheScheduledProcedureStep",
        "ScheduledProtocolCodeSequence",
    }
)

_PRIORITIES = {"S": "STAT", "A": "HIGH", "R": "ROUTINE", "P": "LOW", "C": "ROUTINE", "T": "MEDIUM"}
_SOURCE = re.compile(
    r"\s*(?:'([^']*)'|([A-Z][A-Z0-9]{2}(?:\[\d+\])?-\d+(?:\[\d+\])?(?:\.\d+){0,2}))"
    r"(?:\s+as\s+([a-z]+))?\s*"
)


class MappingError(ValueError):
    """A rule that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Source:
    path: str | None  # None: a literal
    literal: str
    transform: str


@dataclass(frozen=True, slots=True)
class Rule:
    keyword: str  # "Keyword" or "Sequence.Keyword"
    sources: tuple[Source, ...]


def _name(parts: list[str]) -> str:
    family, given, middle, suffix, prefix = (parts + [""] * 5)[:5]
    return "^".join([family, given, middle, prefix, suffix]).rstrip("^")


def _date(value: str) -> str:
    digits = value[:8]
    return digits if len(digits) == 8 and digits.isdigit() else ""


def _time(value: str) -> str:
    digits = re.match(r"\d*", value[8:14])
    text = digits.group(0) if digits else ""
    return (text + "000000")[:6] if len(text) >= 2 else ""


TRANSFORMS: Mapping[str, Callable[[str], str]] = {
    "text": lambda v: v,
    "date": _date,
    "time": _time,
    "sex": lambda v: v.upper() if v.upper() in ("M", "F", "O") else "",
    "priority": lambda v: _PRIORITIES.get(v.upper()[:1], "") if v else "",
    # MSH-18 by message.CHARSETS, the table that decoded the bytes: one definition
    "charset": lambda v: CHARSETS.get(v.upper(), ("", None))[1] or "",
}
#: transforms that read the whole field and split its components themselves
COMPOSITE = {"name": 0, "person": 1}


def parse_rules(text: str, origin: str = "mapping") -> dict[str, Rule]:
    """Rules by keyword; MappingError naming ``origin`` and the line for a bad one."""
    rules: dict[str, Rule] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, eq, right = line.partition("=")
        keyword = keyword.strip()
        where = f"{origin} line {number}"
        if not eq:
            raise MappingError(f"{where}: expected 'Keyword = SOURCE | ...'")
        _check_keyword(keyword, where)
        sources = []
        if right.strip():
            for part in right.split("|"):
                match = _SOURCE.fullmatch(part)
                if match is None:
                    raise MappingError(f"{where}: {part.strip()!r} is not an HL7 path or 'literal'")
                literal, path, transform = match.groups()
                transform = transform or "text"
                if transform not in TRANSFORMS and transform not in COMPOSITE:
                    raise MappingError(f"{where}: unknown transform {transform!r}")
                sources.append(Source(path, literal or "", transform))
        rules[keyword] = Rule(keyword, tuple(sources))
    return rules


def _check_keyword(keyword: str, where: str) -> None:
    parts = keyword.split(".")
    if len(parts) > 2 or not all(p in keyword_dict for p in parts):
        raise MappingError(f"{where}: {keyword!r} is not a DICOM keyword (or Sequence.Keyword)")
    if len(parts) == 2 and dictionary_VR(parts[0]) != "SQ":
        raise MappingError(f"{where}: {parts[0]} is not a sequence")
    if len(parts) == 1 and dictionary_VR(parts[0]) == "SQ":
        raise MappingError(f"{where}: give a keyword inside {parts[0]} ({parts[0]}.Keyword)")


def combined(site: Mapping[str, Rule] | None = None) -> dict[str, Rule]:
    """The default rules with a site's rules over them."""
    rules = parse_rules(DEFAULT_RULES, "default mapping")
    rules.update(site or {})
    return rules


class Reader:
    """What the rules read: ``value(path)`` (one component, unescaped) and
    ``components(path)`` (a field's components, unescaped)."""

    def value(self, path: str) -> str:  # pragma: no cover - protocol
        raise NotImplementedError

    def components(self, path: str) -> list[str]:  # pragma: no cover - protocol
        raise NotImplementedError


def evaluate(source: Source, reader: Reader) -> str:
    if source.path is None:
        return source.literal
    if source.transform in COMPOSITE:
        parts = reader.components(source.path)[COMPOSITE[source.transform] :]
        return _name(parts)
    return TRANSFORMS[source.transform](reader.value(source.path).strip())


def build_dataset(rules: Mapping[str, Rule], reader: Reader) -> Dataset:
    """The worklist entry the rules make of one order (one SPS item always)."""
    ds = Dataset()
    sps = Dataset()
    items: dict[tuple[bool, str], Dataset] = {}
    for keyword, rule in rules.items():
        value = ""
        for source in rule.sources:
            value = evaluate(source, reader)
            if value:
                break
        if not value:
            continue
        outer, _, inner = keyword.rpartition(".")
        target = inner or keyword
        in_sps = (outer or target) in SPS_KEYWORDS
        holder = sps if in_sps else ds
        if outer:
            holder = items.setdefault((in_sps, outer), Dataset())
        setattr(holder, target, value)
    for (in_sps, sequence), item in items.items():
        if item.get("CodeValue") and item.get("CodingSchemeDesignator"):
            setattr(sps if in_sps else ds, sequence, Sequence([item]))
    ds.ScheduledProcedureStepSequence = Sequence([sps])
    return ds
