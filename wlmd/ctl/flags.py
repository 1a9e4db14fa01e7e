"""``wlmctl add --patient-id P --modality CT --start "2026-12-02 09:30" ...``: flags to a data set.

One table: each flag, the attribute it sets (pydicom keyword) and whether
that lives in the Scheduled Procedure Step item; ``--set KEYWORD=VALUE``
reaches any other attribute (SPS attributes, as listed in PS3.4 Table
K.6-1, go into the item). Flags are applied on top of a file's data set, so
``wlmctl add order.json --station-aet CT02`` moves one order to CT02.
"""

from __future__ import annotations

import argparse
import re
import warnings
from dataclasses import dataclass

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataset import Dataset

from wlmd.authoring.errors import BadInput
from wlmd.authoring.selection import parse_date
from wlmd.worklist import keys


@dataclass(frozen=True, slots=True)
class Flag:
    option: str
    keyword: str
    help: str
    in_sps: bool = False


FLAGS = (
    Flag("--patient-id", "PatientID", "PatientID"),
    Flag("--patient-name", "PatientName", "PatientName, as FAMILY^GIVEN"),
    Flag("--birth-date", "PatientBirthDate", "PatientBirthDate (YYYY-MM-DD or YYYYMMDD)"),
    Flag("--sex", "PatientSex", "PatientSex: M, F or O"),
    Flag("--accession", "AccessionNumber", "AccessionNumber (generated when missing)"),
    Flag("--study-uid", "StudyInstanceUID", "StudyInstanceUID (generated when missing)"),
    Flag(
        "--procedure",
        "RequestedProcedureDescription",
        "RequestedProcedureDescription (also the SPS description unless given)",
    ),
    Flag("--procedure-id", "RequestedProcedureID", "RequestedProcedureID (generated)"),
    Flag("--priority", "RequestedProcedurePriority", "RequestedProcedurePriority"),
    Flag("--referring-physician", "ReferringPhysicianName", "ReferringPhysicianName"),
    Flag("--modality", "Modality", "SPS Modality (CT, MR, ...)", True),
    Flag("--station-aet", "ScheduledStationAETitle", "SPS ScheduledStationAETitle", True),
    Flag("--station-name", "ScheduledStationName", "SPS ScheduledStationName", True),
    Flag(
        "--step-description",
        "ScheduledProcedureStepDescription",
        "ScheduledProcedureStepDescription",
        True,
    ),
    Flag("--step-id", "ScheduledProcedureStepID", "ScheduledProcedureStepID (generated)", True),
    Flag(
        "--performing-physician",
        "ScheduledPerformingPhysicianName",
        "SPS ScheduledPerformingPhysicianName",
        True,
    ),
    Flag("--location", "ScheduledProcedureStepLocation", "ScheduledProcedureStepLocation", True),
)

SPS_TAGS = keys.NESTED_RETURN_TAGS[keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE]
_START = re.compile(r"(\d{4}-?\d{2}-?\d{2})(?:[ T](\d{1,2}):?(\d{2})(?::?(\d{2}))?)?")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("attributes (applied on top of FILE's)")
    for flag in FLAGS:
        group.add_argument(flag.option, dest=_dest(flag), metavar="VALUE", help=flag.help)
    group.add_argument(
        "--start",
        metavar='"DATE TIME"',
        help='SPS start date and time: "2026-12-02 09:30" (or 20261202 0930, 2026-12-02T09:30)',
    )
    group.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEYWORD=VALUE",
        help="any attribute by its DICOM keyword (SPS attributes go into the SPS item); "
        "an empty VALUE removes it",
    )


def apply(args: argparse.Namespace, ds: Dataset) -> Dataset:
    """``ds`` with the flags of ``args`` applied (in place; returned for convenience)."""
    values: list[tuple[str, str]] = []
    for flag in FLAGS:
        value = getattr(args, _dest(flag))
        if value is not None:
            values.append((flag.keyword, value))
    if args.start is not None:
        date, time = _start(args.start)
        values.append(("ScheduledProcedureStepStartDate", date))
        if time:
            values.append(("ScheduledProcedureStepStartTime", time))
    for assignment in args.set:
        keyword, sep, value = assignment.partition("=")
        if not sep:
            raise BadInput(f"--set {assignment!r}: KEYWORD=VALUE expected")
        values.append((keyword.strip(), value))
    for keyword, value in values:
        _set(ds, keyword, value)
    procedure = args.attr_procedure
    item = _sps(ds)
    if procedure and "ScheduledProcedureStepDescription" not in item:
        item.ScheduledProcedureStepDescription = procedure
    return ds


def _set(ds: Dataset, keyword: str, value: str) -> None:
    tag_ = tag_for_keyword(keyword)
    if tag_ is None:
        raise BadInput(f"unknown DICOM keyword {keyword!r}")
    holder = _sps(ds) if tag_ in SPS_TAGS else ds
    if value == "":
        if keyword in holder:
            del holder[keyword]
        return
    vr = str(dictionary_VR(tag_)).split(" or ")[0]
    if vr == "SQ":
        raise BadInput(f"{keyword} is a sequence: give it in a JSON or dump file")
    if vr == "DA":
        value = parse_date(value).strftime("%Y%m%d")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        setattr(holder, keyword, value.split("\\") if "\\" in value else value)


def _sps(ds: Dataset) -> Dataset:
    sequence = ds.get("ScheduledProcedureStepSequence")
    if not sequence:
        ds.ScheduledProcedureStepSequence = [Dataset()]
        sequence = ds.ScheduledProcedureStepSequence
    item: Dataset = sequence[0]
    return item


def _start(text: str) -> tuple[str, str]:
    match = _START.fullmatch(text.strip())
    if match is None:
        raise BadInput(f'bad --start {text!r} (e.g. "2026-12-02 09:30")')
    date = parse_date(match.group(1)).strftime("%Y%m%d")
    hour, minute, second = match.group(2), match.group(3), match.group(4)
    if hour is None:
        return date, ""
    if int(hour) > 23 or int(minute) > 59 or (second is not None and int(second) > 59):
        raise BadInput(f"bad time in --start {text!r}")
    return date, f"{int(hour):02d}{minute}{second or ''}"


def _dest(flag: Flag) -> str:
    return "attr_" + flag.option[2:].replace("-", "_")
