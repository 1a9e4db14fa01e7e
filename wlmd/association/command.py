"""The plain C-FIND, C-ECHO and C-CANCEL request command sets, without pynetdicom's DIMSEMessage.

pynetdicom's :class:`~pynetdicom.dimse_messages.DIMSEMessage` turns a command
set into a primitive by converting every element with pydicom and setting
each on the primitive (``message_to_primitive``): ~60 µs of a ~300 µs C-FIND
on an open association. For the three requests a modality sends, in the
form every requestor sends them (one fragment, PS3.8 E.2; exactly the
elements of PS3.7 Tables 9.3-3, 9.3-12, 9.3-14 with well-formed values)
this module does the same with less: the command set is still decoded by
pynetdicom's codec (:func:`pynetdicom.dsutils.decode`), its few values are
read from their bytes, and set on pynetdicom's own primitive class, whose
setters validate them as before. Anything else (another command, another
element, a value of another length, a UID that is not plain ASCII) gets
None here and goes through DIMSEMessage, unchanged
(tests/unit/association/test_command.py compares both on mutated command sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom.dataelem import RawDataElement
from pydicom.uid import UID
from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_FIND
from pynetdicom.dsutils import decode

from wlmd.association.wire import C_CANCEL_RQ, C_ECHO_RQ, C_FIND_RQ, NO_DATA_SET

_GROUP_LENGTH = 0x00000000
_AFFECTED_SOP_CLASS_UID = 0x00000002
_COMMAND_FIELD = 0x00000100
_MESSAGE_ID = 0x00000110
_MESSAGE_ID_BEING_RESPONDED_TO = 0x00000120
_PRIORITY = 0x00000700
_COMMAND_DATA_SET_TYPE = 0x00000800

#: how each value is read: (kind, primitive attribute or None for not set on it)
_US, _UL, _UI = "US", "UL", "UI"
_ELEMENTS: dict[int, tuple[str, str | None]] = {
    _GROUP_LENGTH: (_UL, None),
    _AFFECTED_SOP_CLASS_UID: (_UI, "AffectedSOPClassUID"),
    _COMMAND_FIELD: (_US, None),
    _MESSAGE_ID: (_US, "MessageID"),
    _MESSAGE_ID_BEING_RESPONDED_TO: (_US, "MessageIDBeingRespondedTo"),
    _PRIORITY: (_US, "Priority"),
    _COMMAND_DATA_SET_TYPE: (_US, None),
}


@dataclass(frozen=True)
class _Kind:
    primitive: type
    #: the command set's elements besides (0000,0000), which is optional
    tags: frozenset[int]
    #: whether a data set may follow (C-FIND: the identifier)
    data_set: bool


_KINDS = {
    C_FIND_RQ: _Kind(
        C_FIND,
        frozenset(
            {
                _AFFECTED_SOP_CLASS_UID,
                _COMMAND_FIELD,
                _MESSAGE_ID,
                _PRIORITY,
                _COMMAND_DATA_SET_TYPE,
            }
        ),
        True,
    ),
    C_ECHO_RQ: _Kind(
        C_ECHO,
        frozenset({_AFFECTED_SOP_CLASS_UID, _COMMAND_FIELD, _MESSAGE_ID, _COMMAND_DATA_SET_TYPE}),
        False,
    ),
    C_CANCEL_RQ: _Kind(
        C_CANCEL,
        frozenset({_COMMAND_FIELD, _MESSAGE_ID_BEING_RESPONDED_TO, _COMMAND_DATA_SET_TYPE}),
        False,
    ),
}


class CommandError(Exception):
    """pynetdicom's primitive refused a value (its setters validate): the message is bad."""


@dataclass
class PlainCommand:
    """A decoded plain request command set: its primitive, and whether a data set follows."""

    command_field: int
    primitive: Any
    has_data_set: bool

    def complete(self, data_set: bytes | None, context_id: int) -> Any:
        """The primitive, with its data set (C-FIND Identifier) and context, as pynetdicom's."""
        primitive = self.primitive
        if data_set is not None:
            primitive.Identifier = BytesIO(data_set)
        primitive._context_id = context_id
        return primitive


def _value(element: RawDataElement, kind: str) -> int | str | None:
    """The value pydicom would convert to, for a plain one; None for anything else."""
    raw = element.value
    if not isinstance(raw, bytes):
        return None
    if kind == _US:
        return int.from_bytes(raw, "little") if len(raw) == 2 else None
    if kind == _UL:
        return int.from_bytes(raw, "little") if len(raw) == 4 else None
    if not raw.isascii() or b"\\" in raw:
        return None
    text = raw.decode("ascii").rstrip("\0 ")
    return text or None


def read_plain(command_set: bytes) -> PlainCommand | None:
    """The command set of a plain C-FIND/C-ECHO/C-CANCEL-RQ; None: let DIMSEMessage decode it.

    Raises :class:`CommandError` where pynetdicom's primitive refuses a
    value, as ``DIMSEMessage.message_to_primitive`` would.
    """
    dataset = decode(BytesIO(command_set), True, True)
    elements = {int(tag): dataset.get_item(tag) for tag in dataset.keys()}  # noqa: SIM118
    field_element = elements.get(_COMMAND_FIELD)
    if not isinstance(field_element, RawDataElement):
        return None
    field = _value(field_element, _US)
    kind = _KINDS.get(field) if isinstance(field, int) else None
    if kind is None or set(elements) - {_GROUP_LENGTH} != kind.tags:
        return None
    values: dict[int, int | str] = {}
    for tag, element in elements.items():
        if not isinstance(element, RawDataElement):
            return None
        value = _value(element, _ELEMENTS[tag][0])
        if value is None:
            return None
        values[tag] = value
    has_data_set = values[_COMMAND_DATA_SET_TYPE] != NO_DATA_SET
    if has_data_set and not kind.data_set:
        return None
    primitive = kind.primitive()
    try:
        for tag in sorted(values):  # in command set order, as message_to_primitive
            attribute = _ELEMENTS[tag][1]
            if attribute is not None:
                value = values[tag]
                setattr(primitive, attribute, UID(value) if isinstance(value, str) else value)
    except Exception as exc:
        raise CommandError(repr(exc)) from None
    return PlainCommand(int(field), primitive, has_data_set)  # type: ignore[arg-type]
