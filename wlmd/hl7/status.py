"""MPPS status -> an ORM^O01 status message for the RIS (pure: no sockets, no store).

IHE RAD TF-2 4.42 ("Performed Work Status Update") and the many RIS that
predate it take the modality's progress as an ORM^O01 v2.3.1 with ORC-1
``SC`` (status changed) and ORC-5 the order status (HL7 table 0038): ``IP``
while the MPPS is IN PROGRESS, ``CM`` when COMPLETED, ``DC`` when
DISCONTINUED. The order is named as the intake mapping reads it back
(:mod:`wlmd.hl7.mapping`): ORC-2/ORC-3 placer/filler order numbers, OBR-18
accession number, OBR-19 requested procedure ID, OBR-20 SPS ID, ZDS-1 the
Study Instance UID, PID-3 the patient ID; all from the MPPS's Scheduled Step
Attributes Sequence (PS3.3 C.4.13). Values are escaped; the message is
UTF-8 (MSH-18 ``UNICODE UTF-8``) when any value is not ASCII.
"""

from __future__ import annotations

import datetime as _dt

from pydicom.dataset import Dataset

from wlmd.hl7.ack import escape
from wlmd.hl7.message import Header

#: PerformedProcedureStepStatus -> ORC-5 (HL7 table 0038)
ORDER_STATUS = {"IN PROGRESS": "IP", "COMPLETED": "CM", "DISCONTINUED": "DC"}

_HEADER = Header("|", "^~\\&", ("|", "^~\\&"))


def _text(ds: Dataset | None, keyword: str) -> str:
    if ds is None:
        return ""
    value = ds.get(keyword)
    return "" if value is None else escape(str(value), _HEADER)


def _name(ds: Dataset) -> str:
    """DICOM PN (family^given^middle^prefix^suffix) as an HL7 XPN (…^suffix^prefix)."""
    parts = (str(ds.get("PatientName", "") or "").split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = (escape(p, _HEADER) for p in parts)
    return "^".join([family, given, middle, suffix, prefix]).rstrip("^")


def status_message(
    mpps: Dataset,
    control_id: str,
    sender: tuple[str, str] = ("WLMD", "WLMD"),
    now: _dt.datetime | None = None,
) -> bytes:
    """The ORM^O01 (ORC-1 SC) telling the RIS the status of ``mpps``; KeyError for a status
    that has no ORC-5 value."""
    order_status = ORDER_STATUS[str(mpps.get("PerformedProcedureStepStatus", ""))]
    steps = mpps.get("ScheduledStepAttributesSequence") or [None]
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d%H%M%S")
    pid = ["PID", "1", "", _text(mpps, "PatientID"), "", _name(mpps)]
    segments = []
    for number, step in enumerate(steps, 1):
        placer = _text(step, "PlacerOrderNumberImagingServiceRequest")
        filler = _text(step, "FillerOrderNumberImagingServiceRequest")
        described = _text(step, "RequestedProcedureDescription")
        obr = ["OBR", str(number), placer, filler, f"^{described}" if described else ""]
        obr += [""] * 13 + [
            _text(step, "AccessionNumber"),  # OBR-18
            _text(step, "RequestedProcedureID"),  # OBR-19
            _text(step, "ScheduledProcedureStepID"),  # OBR-20
            "",
            "",
            "",
            _text(mpps, "Modality"),  # OBR-24
        ]
        segments += [
            "|".join(["ORC", "SC", placer, filler, "", order_status]),
            "|".join(obr),
            "|".join(["ZDS", _text(step, "StudyInstanceUID")]),
        ]
    text = "\r".join(["|".join(pid), *segments])
    charset = "" if text.isascii() else "UNICODE UTF-8"
    msh = ["MSH", "^~\\&", sender[0], sender[1], "", "", stamp, "", "ORM^O01", control_id]
    msh += ["P", "2.3.1"] + (["", "", "", "", "", charset] if charset else [])
    return ("|".join(msh) + "\r" + text + "\r").encode("utf-8" if charset else "ascii")
