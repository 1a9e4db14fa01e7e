"""Checking UPS requests against PS3.4 Table CC.2.5-3 (``wlmd/ups/table.py``).

``check_create``, ``check_set`` and ``check_final`` read the table and
return a :class:`Check` (status, offending tags, reason) and the data set to
store; they never raise on bad input.

Deliberate leniencies (the SCU still gets a warning): a missing type 2
attribute is added empty and N-CREATE answers B300; a missing Worklist Label
gets the SCP's default; Scheduled Procedure Step Modification DateTime is
always the SCP's (CC.2.5.3), and replacing a value the SCU sent is a
coercion too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from wlmd.ups import states
from wlmd.ups.states import State
from wlmd.ups.table import (
    BY_TAG,
    MODIFICATION_DATETIME,
    PROCEDURE_STEP_STATE,
    PROGRESS_SEQUENCE,
    RULES,
    SCHEDULED_INFORMATION,
    SOP_INSTANCE_UID,
    SPECIFIC_CHARACTER_SET,
    TRANSACTION_UID,
    UPS_SOP_CLASS,
    WORKLIST_LABEL,
    Rule,
    tag,
)


@dataclass(frozen=True)
class Check:
    """The verdict of a check: a status, the offending tags, a one-line reason.

    ``dataset`` is what to store (N-CREATE, N-SET), None when the check failed.
    ``changed`` lists the top-level tags N-SET changed (the events depend on it).
    """

    status: int
    offending: tuple[int, ...] = ()
    reason: str = ""
    dataset: Dataset | None = None
    changed: frozenset[int] = field(default_factory=frozenset)

    @property
    def failed(self) -> bool:
        return states.is_failure(self.status)


def name(t: int) -> str:
    return keyword_for_tag(t) or f"({t >> 16:04X},{t & 0xFFFF:04X})"


def has_value(ds: Dataset, t: int) -> bool:
    """Present with a value: a non-empty element, or a sequence with an item."""
    if t not in ds:
        return False
    value = ds[t].value
    if isinstance(value, Sequence):
        return len(value) > 0
    return value is not None and value != "" and value != b""


def text(ds: Dataset, t: int) -> str:
    """An element's value as text ('' when absent or empty); multi-values joined by '\\'."""
    if t not in ds:
        return ""
    value = ds[t].value
    if value is None or isinstance(value, Sequence):
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value).strip(" \x00")


def empty_element(t: int) -> DataElement:
    vr = str(dictionary_VR(t))
    return DataElement(t, vr, [] if vr == "SQ" else None)


def check_create(
    request: Dataset, uid: str, now: str, *, default_worklist_label: str = "wlmd"
) -> Check:
    """N-CREATE (CC.2.5): the data set to store, or why it is refused.

    ``now`` is the SCP's current DT value; ``uid`` the instance UID (given or
    assigned). Refuses a state other than SCHEDULED (0xC309), attributes the
    SCU may not send (0x0105), a missing or empty type 1 attribute
    (0x0120/0x0121) and a value outside an enumeration (0x0106).
    """
    ds = Dataset()
    ds.update(request)
    state = text(ds, PROCEDURE_STEP_STATE)
    if PROCEDURE_STEP_STATE in ds and state != State.SCHEDULED.value:
        return Check(
            states.CREATE_NOT_SCHEDULED, (PROCEDURE_STEP_STATE,), f"state {state!r} on N-CREATE"
        )
    # Table CC.2.5-3: the Transaction UID is Type 2 in N-CREATE and "shall be empty"
    # (a conforming SCU sends it empty); a value is refused, the empty one dropped
    # (the SCP records a Transaction UID only when the step is claimed).
    if text(ds, TRANSACTION_UID):
        return Check(
            states.INVALID_ATTRIBUTE_VALUE,
            (TRANSACTION_UID,),
            "Transaction UID must be empty in N-CREATE",
        )
    if TRANSACTION_UID in ds:
        del ds[TRANSACTION_UID]
    not_allowed = []
    # The instance comes from the command; a copy in the data set that agrees is harmless.
    if text(ds, SOP_INSTANCE_UID) not in ("", uid):
        not_allowed.append(SOP_INSTANCE_UID)
    if not_allowed:
        return Check(
            states.NO_SUCH_ATTRIBUTE,
            tuple(not_allowed),
            "not allowed in N-CREATE: " + ", ".join(name(t) for t in not_allowed),
        )
    problem = _required(ds, (r for r in RULES if r.create == "1"))
    if problem is not None:
        return problem
    problem = _enumerations(ds)
    if problem is not None:
        return problem
    coerced = False
    for rule in RULES:
        if rule.create == "2" and rule.tag not in ds:
            ds.add(empty_element(rule.tag))
            coerced = True
    if not text(ds, WORKLIST_LABEL):
        ds.WorklistLabel = default_worklist_label
    if text(ds, MODIFICATION_DATETIME) not in ("", now):
        coerced = True
    ds.ScheduledProcedureStepModificationDateTime = now
    ds.SOPClassUID = UPS_SOP_CLASS
    ds.SOPInstanceUID = uid
    status = states.CREATED_WITH_MODIFICATIONS if coerced else states.SUCCESS
    return Check(status, dataset=ds)


def check_set(current: Dataset, modification: Dataset, now: str) -> Check:
    """N-SET (CC.2.6): the merged data set, or why the change is refused.

    The Transaction UID (checked by the state machine) is not stored from
    here. Attributes N-SET may not change fail with 0x0105; emptying a type 1
    attribute fails with 0x0121. A sequence is replaced as a whole.
    """
    changes = [e for e in modification if e.tag != TRANSACTION_UID]
    not_allowed = tuple(e.tag for e in changes if e.tag in BY_TAG and BY_TAG[e.tag].set == "-")
    if not_allowed:
        return Check(
            states.NO_SUCH_ATTRIBUTE,
            not_allowed,
            "not allowed in N-SET: " + ", ".join(name(t) for t in not_allowed),
        )
    emptied = tuple(
        e.tag
        for e in changes
        if e.tag in BY_TAG and BY_TAG[e.tag].create == "1" and not has_value(modification, e.tag)
    )
    if emptied:
        return Check(
            states.MISSING_ATTRIBUTE_VALUE,
            emptied,
            "type 1 attribute emptied: " + ", ".join(name(t) for t in emptied),
        )
    problem = _enumerations(modification)
    if problem is not None:
        return problem
    merged = Dataset()
    merged.update(current)
    changed = set()
    for element in changes:
        if element.tag not in merged or merged[element.tag] != element:
            changed.add(element.tag)
        merged[element.tag] = element
    if changed & SCHEDULED_INFORMATION:
        merged.ScheduledProcedureStepModificationDateTime = now
    return Check(states.SUCCESS, dataset=merged, changed=frozenset(changed))


def check_final(ds: Dataset, target: State) -> Check:
    """CC.2.5.1.1: may ``ds`` become ``target`` (COMPLETED or CANCELED)? 0xC304 if not."""
    codes = {"R", "P"} if target is State.COMPLETED else {"R", "X"}
    missing = _final_missing(ds, RULES, codes)
    if missing:
        return Check(
            states.FINAL_STATE_REQUIREMENTS_NOT_MET,
            tuple(missing),
            f"{target.value} needs " + ", ".join(name(t) for t in missing),
        )
    return Check(states.SUCCESS, dataset=ds)


def _final_missing(ds: Dataset, rules: Iterable[Rule], codes: set[str]) -> list[int]:
    missing = []
    for rule in rules:
        required = rule.final in codes
        if rule.vr == "SQ" and rule.children:
            child_required = any(c.final in codes for c in rule.children)
            if not (required or child_required):
                continue
            items = ds[rule.tag].value if rule.tag in ds else []
            if not items:
                missing.append(rule.tag)
                continue
            for item in items:
                missing.extend(_final_missing(item, rule.children, codes))
        elif required and not has_value(ds, rule.tag):
            missing.append(rule.tag)
    return list(dict.fromkeys(missing))


def supplement_cancel(ds: Dataset, now: str, info: Dataset | None = None) -> None:
    """Before a step becomes CANCELED: the progress item the SCP fills in (CC.2.2.3).

    Cancellation DateTime when missing, the requester's reason and contact
    from a Request Cancel, and DCM 110513 "Discontinued for unspecified
    reason" when no reason code was given (as dcm4chee-arc).
    """
    if not has_value(ds, PROGRESS_SEQUENCE):
        ds.ProcedureStepProgressInformationSequence = [Dataset()]
    item = ds.ProcedureStepProgressInformationSequence[0]
    if info is not None:
        for keyword in ("ReasonForCancellation", "ProcedureStepDiscontinuationReasonCodeSequence"):
            if keyword in info:
                setattr(item, keyword, info.data_element(keyword).value)  # type: ignore[union-attr]
        contact = {k: info.get(k) for k in ("ContactURI", "ContactDisplayName") if k in info}
        if contact:
            uri = Dataset()
            for k, v in contact.items():
                setattr(uri, k, v)
            item.ProcedureStepCommunicationsURISequence = [uri]
    if not text(item, tag("ProcedureStepCancellationDateTime")):
        item.ProcedureStepCancellationDateTime = now
    if not has_value(item, tag("ProcedureStepDiscontinuationReasonCodeSequence")):
        code = Dataset()
        code.CodeValue = "110513"
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = "Discontinued for unspecified reason"
        item.ProcedureStepDiscontinuationReasonCodeSequence = [code]


def select(ds: Dataset, tags: Iterable[int] | None) -> Dataset:
    """The attributes N-GET returns (CC.2.7): those asked for (all when None), an
    asked-for attribute the step lacks as an empty one, never the Transaction UID."""
    out = Dataset()
    wanted = list(tags) if tags else [e.tag for e in ds]
    for t in wanted:
        if t == TRANSACTION_UID:
            continue
        if t in ds:
            out[t] = ds[t]
        elif known_tag(t):
            out.add(empty_element(t))
    if SPECIFIC_CHARACTER_SET in ds and SPECIFIC_CHARACTER_SET not in out:
        out[SPECIFIC_CHARACTER_SET] = ds[SPECIFIC_CHARACTER_SET]
    return out


def known_tag(t: int) -> bool:
    """Whether pydicom's dictionary knows ``t`` (an unknown tag cannot be returned empty)."""
    try:
        dictionary_VR(t)
    except KeyError:
        return False
    return True


def _required(ds: Dataset, rules: Iterable[Rule]) -> Check | None:
    missing = []
    empty = []
    for rule in rules:
        if rule.tag not in ds:
            missing.append(rule.tag)
        elif not has_value(ds, rule.tag):
            empty.append(rule.tag)
    if missing:
        return Check(
            states.MISSING_ATTRIBUTE,
            tuple(missing),
            "missing: " + ", ".join(name(t) for t in missing),
        )
    if empty:
        return Check(
            states.MISSING_ATTRIBUTE_VALUE,
            tuple(empty),
            "empty: " + ", ".join(name(t) for t in empty),
        )
    return None


def _enumerations(ds: Dataset) -> Check | None:
    bad = [
        r.tag for r in RULES if r.enum and has_value(ds, r.tag) and text(ds, r.tag) not in r.enum
    ]
    if bad:
        return Check(
            states.INVALID_ATTRIBUTE_VALUE,
            tuple(bad),
            "not an enumerated value: " + ", ".join(name(t) for t in bad),
        )
    return None
