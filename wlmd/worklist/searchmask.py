"""Checking a C-FIND request identifier: PS3.4 K.6 / C.2.2, as wlmscpfs does it.

``check_search_mask`` turns the request identifier into a cleaned
:class:`SearchMask`: unsupported attributes are removed (and remembered, so the
pending responses carry 0xFF01), empty sequences are expanded into the return
keys wlmscpfs would return, matching key values are validated (an invalid one
makes the query fail with 0xA900 unless ``--no-fail``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from pydicom import config as pydicom_config
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from wlmd.worklist import keys, values
from wlmd.worklist.charset import decode, encode
from wlmd.worklist.identifier import Level, RawElement, dictionary_vr


@dataclass
class MaskElement:
    """One non-sequence attribute of the search mask.

    ``text`` is the decoded value used for matching; ``raw`` the value bytes
    as received (echoed back only where wlmscpfs echoes the request).
    """

    tag: int
    vr: str
    text: str = ""
    raw: bytes = b""


@dataclass
class MaskSequence:
    tag: int
    items: list[list[MaskNode]] = field(default_factory=list)


MaskNode = MaskElement | MaskSequence


@dataclass
class SearchMask:
    """A checked, cleaned search mask and what the check found."""

    nodes: list[MaskNode]
    #: Request attributes that are neither matching nor return keys (removed → 0xFF01).
    unsupported: list[int] = field(default_factory=list)
    #: Tags for (0000,0901) Offending Element when the request is invalid.
    offending: list[int] = field(default_factory=list)
    #: Text for (0000,0902) Error Comment when the request is invalid.
    error_comment: str = ""
    invalid_count: int = 0
    #: The request's own (0008,0005): used for decoding only, never for matching.
    request_charset: str = ""

    @property
    def is_valid(self) -> bool:
        return self.invalid_count == 0

    @property
    def has_unsupported_keys(self) -> bool:
        return bool(self.unsupported)


class _Tagged(Protocol):
    tag: int


_T = TypeVar("_T", bound=_Tagged)


def find(nodes: Iterable[_T], tag: int) -> _T | None:
    """The node with ``tag`` in one level of a mask (or of a response), or None."""
    for node in nodes:
        if node.tag == tag:
            return node
    return None


#: A request identifier: read from its bytes (:mod:`wlmd.worklist.identifier`), or by pydicom
Identifier = Dataset | Level


def check_search_mask(identifier: Identifier, sq_expansion: bool = True) -> SearchMask:
    """Validate and clean a C-FIND identifier (dcmwlm ``CheckSearchMask``).

    Both kinds of identifier give the same mask: a :class:`Level` is read
    with the rules pydicom's lazily decoded Dataset follows here.
    """
    charset = _charset_of(identifier)
    mask = SearchMask(nodes=[], request_charset=charset)
    mask.nodes = _check_level(identifier, None, mask, sq_expansion)
    if mask.invalid_count > 1:
        mask.error_comment = "Syntax error in 1 or more matching keys"
    return mask


def _first_charset_term(charset: str) -> str:
    """wlmscpfs looks only at the first value of (0008,0005) to decide 'no charset'."""
    return charset.split("\\")[0].strip()


def _charset_of(identifier: Identifier) -> str:
    if isinstance(identifier, Level):
        element = identifier.elements.get(keys.SPECIFIC_CHARACTER_SET)
        if element is None:
            return ""
        return element.value.decode("ascii", "replace").strip(" \x00")
    raw = identifier.get_item(keys.SPECIFIC_CHARACTER_SET)
    if raw is None:
        return ""
    if isinstance(raw, RawDataElement):
        return bytes(raw.value or b"").decode("ascii", "replace").strip(" \x00")
    value = raw.value
    if isinstance(value, (list, MultiValue)):
        return "\\".join(str(v) for v in value)
    return str(value or "")


def _check_level(
    ds: Identifier, parent: int | None, mask: SearchMask, sq_expansion: bool
) -> list[MaskNode]:
    nodes: list[MaskNode] = []
    for tag_ in _tags(ds):
        if tag_ & 0xFFFF == 0:  # group lengths are dropped silently, as by DCMTK
            continue
        supported = keys.is_supported(tag_, parent)
        vr, raw_value, text, items = _read(ds, tag_, mask.request_charset, supported)
        if not supported:
            # SpecificCharacterSet is dropped without the 0xFF01 warning.
            if tag_ != keys.SPECIFIC_CHARACTER_SET:
                mask.unsupported.append(tag_)
            continue
        if vr == "SQ":
            nodes.append(_check_sequence(tag_, items or [], mask, sq_expansion))
            continue
        element = MaskElement(tag_, vr, text, raw_value)
        if keys.is_matching_key(tag_, parent):
            _check_matching_value(element, mask)
        nodes.append(element)
    return nodes


def _tags(ds: Identifier) -> list[int]:
    if isinstance(ds, Level):
        return sorted(ds.elements)
    return sorted(int(t) for t in ds.keys())  # noqa: SIM118 (iterating yields elements)


def _read(
    ds: Identifier, tag_: int, charset: str, supported: bool
) -> tuple[str, bytes, str, list[Dataset] | list[Level] | None]:
    if isinstance(ds, Level):
        return _read_parsed(ds.elements[tag_], tag_, charset, supported)
    return _read_element(ds, tag_, charset, supported)


def _read_parsed(
    element: RawElement, tag_: int, charset: str, supported: bool
) -> tuple[str, bytes, str, list[Level] | None]:
    """:func:`_read_element` for an element read by :mod:`wlmd.worklist.identifier`.

    The same outcome, case by case: a sequence gives its items; an empty,
    supported key gets the VR :func:`_empty_raw_vr` gives it (pydicom keeps
    an empty text value as b"", not None, and :func:`_read_element` then
    keeps the VR in the stream: the same VR, as only None and UN are
    replaced); everything else keeps the VR in the stream (implicit VR: the
    dictionary's, else UN) and its bytes.
    """
    if element.items is not None:
        return "SQ", b"", "", element.items
    vr = element.vr
    if supported and not element.value:
        known = vr
        if known is None or (known == "UN" and pydicom_config.replace_un_with_known_vr):
            known = dictionary_vr(tag_)
        if known is not None and known != "SQ" and " or " not in known:
            return known, b"", "", None
    if not vr:
        vr = dictionary_vr(tag_) or "UN"
    return vr, element.value, decode(element.value, charset), None


def _read_element(
    ds: Dataset, tag_: int, charset: str, supported: bool = False
) -> tuple[str, bytes, str, list[Dataset] | None]:
    """VR, raw value bytes, text and (for sequences) items.

    Requests arrive with raw (unconverted) elements, whose bytes are kept; an
    element pydicom has already converted (e.g. the request file writer read
    it) gives its text directly and bytes encoded in the request's character set.
    """
    if supported:
        empty_vr = _empty_raw_vr(ds, tag_)
        if empty_vr is not None:
            return empty_vr, b"", "", None
    elem = ds.get_item(tag_)
    vr = elem.VR if elem is not None else None
    if not vr:
        try:
            vr = dictionary_VR(Tag(tag_))
        except KeyError:
            vr = "UN"
    if vr == "SQ":
        return "SQ", b"", "", list(ds[tag_].value or [])
    if isinstance(elem, RawDataElement):
        raw = bytes(elem.value or b"")
        return vr, raw, decode(raw, charset), None
    text = _text_of(ds[tag_].value)
    return vr, encode(text, charset), text, None


def _empty_raw_vr(ds: Dataset, tag_: int) -> str | None:
    """The VR of an empty, still raw, non-sequence return key; None for anything else.

    Most keys of a request are empty (return keys). pydicom marks an empty raw
    value like a deferred read, so ``get_item`` would convert the element
    (``Dataset.__getitem__``) just to find it empty: half the cost of checking
    a modality's request. For a supported key (all in the data dictionary,
    none with an ambiguous VR) the conversion's outcome is known: the VR
    pydicom's ``raw_element_vr`` hook would choose, empty text, no bytes.
    """
    elem = ds.get_item(tag_, keep_deferred=True)
    if not isinstance(elem, RawDataElement) or elem.value is not None or elem.length != 0:
        return None
    vr = elem.VR
    if vr is None or (vr == "UN" and pydicom_config.replace_un_with_known_vr):
        try:
            vr = dictionary_VR(Tag(tag_))
        except KeyError:
            return None
    if vr == "SQ" or " or " in vr:
        return None
    return str(vr)


def _text_of(value: object) -> str:
    """The DICOM string form of a value pydicom has already converted."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, MultiValue)):
        return "\\".join(_text_of(v) for v in value)
    return str(value)


def _size(item: Identifier) -> int:
    return len(item.elements) if isinstance(item, Level) else len(item)


def _check_sequence(
    tag_: int, items: list[Dataset] | list[Level], mask: SearchMask, sq_expansion: bool
) -> MaskSequence:
    """An empty sequence is expanded; more than one item is an error (first kept)."""
    if not items or (len(items) == 1 and _size(items[0]) == 0):
        if sq_expansion:
            return MaskSequence(tag_, [_expansion(tag_)])
        return MaskSequence(tag_, [[] for _ in items])
    if len(items) > 1:
        _offend(mask, tag_, "More than 1 item in sequence.")
    return MaskSequence(tag_, [_check_level(items[0], tag_, mask, sq_expansion)])


def _expansion(tag_: int) -> list[MaskNode]:
    """The item wlmscpfs puts into an empty sequence of the request."""
    nodes: list[MaskNode] = []
    for keyword, vr in keys.SEQUENCE_EXPANSIONS.get(tag_, ()):
        child = keys.tag(keyword)
        if vr == "SQ":
            nodes.append(MaskSequence(child, [_expansion(child)]))
        else:
            nodes.append(MaskElement(child, vr))
    nodes.sort(key=lambda n: n.tag)
    return nodes


def _check_matching_value(element: MaskElement, mask: SearchMask) -> None:
    """dcmwlm CheckMatchingKey: DA/TM syntax and character repertoires."""
    if element.vr == "DA":
        problem = values.date_query_problem(element.text)
    elif element.vr == "TM":
        problem = values.time_query_problem(element.text)
    else:
        problem = values.repertoire_problem(
            element.vr, element.text, bool(_first_charset_term(mask.request_charset))
        )
    if problem:
        _offend(mask, element.tag, problem)


def _offend(mask: SearchMask, tag_: int, comment: str) -> None:
    if tag_ not in mask.offending:
        mask.offending.append(tag_)
    mask.error_comment = comment
    mask.invalid_count += 1
