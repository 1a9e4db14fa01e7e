"""The path of one worklist query, from identifier to responses.

``check the search mask → read-lock the area → take its entries → match →
release the lock → build responses``. The network layer sends what
:func:`run_find` returns; nothing here knows about sockets or pynetdicom.

An identifier without a single supported key (only Specific Character Set, or
only keys dropped with 0xFF01) is answered like any other query: nothing
constrains, so every entry matches (PS3.4 C.2.2.2.3), and each response holds the
keys asked for, none (C.4.1.1.3.2): one empty identifier per entry, then Success.
wlmscpfs matches too, then aborts the association because DCMTK's DIMSE layer will
not send an empty data set; wlmd deliberately does not copy that (README,
"Deliberate differences"; tests/differential ``empty-mask-*``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from wlmd.settings.config import ReturnCharset
from wlmd.worklist import keys, values
from wlmd.worklist.area import StorageArea
from wlmd.worklist.entry import WorklistEntry
from wlmd.worklist.layout import AreaUnavailable
from wlmd.worklist.match import MatchOptions, compile_mask, probes
from wlmd.worklist.respond import ResponseNode, ResponsePlan
from wlmd.worklist.searchmask import (
    Identifier,
    MaskElement,
    MaskSequence,
    SearchMask,
    check_search_mask,
    find,
)

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class FindOptions:
    """The query-related settings of :class:`wlmd.settings.config.Config`."""

    sq_expansion: bool = True
    no_fail: bool = False
    return_charset: ReturnCharset = ReturnCharset.NONE
    filter_issuer_aet: bool = False
    limit_answers: int = 0
    match: MatchOptions = field(default_factory=MatchOptions)


@dataclass
class FindResult:
    """What to send: pending responses, then a final status (with details on failure).

    The responses are the ``matches`` answered with ``plan``: the network layer
    encodes them straight to bytes (:class:`wlmd.worklist.respbytes.ResponseEncoder`);
    :attr:`responses` builds them as node trees, for tests and other readers.
    """

    final_status: int
    #: The entries to answer, in order (after --limit-answers).
    matches: list[WorklistEntry] = field(default_factory=list)
    plan: ResponsePlan | None = None
    return_charset: ReturnCharset = ReturnCharset.NONE
    pending_status: int = keys.PENDING
    offending: list[int] = field(default_factory=list)
    error_comment: str = ""
    #: Matches before --limit-answers cut them.
    match_count: int = 0

    @property
    def responses(self) -> list[list[ResponseNode]]:
        """The response identifiers as tag-ordered node lists (built on each access)."""
        if self.plan is None:
            return []
        plan, charset = self.plan, self.return_charset
        return [plan.build(entry, charset) for entry in self.matches]


def run_find(
    area: StorageArea, identifier: Identifier, calling_ae: str, options: FindOptions
) -> FindResult:
    """Answer one C-FIND request against one storage area."""
    try:
        mask = check_search_mask(identifier, options.sq_expansion)
    except Exception as exc:  # pydicom parses sequences lazily: errors surface here
        LOG.warning("C-FIND identifier cannot be decoded: %s", exc)
        return FindResult(
            keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS, error_comment="Identifier cannot be decoded"
        )
    if not mask.is_valid and not options.no_fail:
        return FindResult(
            keys.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS,
            offending=mask.offending,
            error_comment=mask.error_comment,
        )
    try:
        with area.read_locked():
            area.refresh()
            matches = select(area, mask, calling_ae, options)
    except AreaUnavailable as exc:
        LOG.error("C-FIND answered with Out of Resources (0xA700): %s", exc)
        return FindResult(keys.OUT_OF_RESOURCES, error_comment=exc.comment)
    # Answered after the lock is released: a parsed entry is never changed, only
    # replaced in the index by the next refresh, so the matched entries stay
    # what the query saw under the lock; writers wait for matching only.
    result = FindResult(
        keys.SUCCESS,
        matches,
        ResponsePlan(mask),
        options.return_charset,
        match_count=len(matches),
    )
    if mask.has_unsupported_keys:
        result.pending_status = keys.PENDING_OPTIONAL_KEYS_UNSUPPORTED
    if options.limit_answers and len(matches) > options.limit_answers:
        # As Orthanc's LimitAnswers: the answer is incomplete, say so with Cancel.
        del result.matches[options.limit_answers :]
        result.final_status = keys.CANCEL
    return result


def select(
    area: StorageArea, mask: SearchMask, calling_ae: str, options: FindOptions
) -> list[WorklistEntry]:
    """The entries of ``area`` matching the mask, in storage order (file name).

    The area's index proposes candidates from the mask's probes; the
    compiled mask decides every one of them.
    """
    restrict_to = (
        calling_ae.strip() if options.filter_issuer_aet and not _has_station(mask) else None
    )
    matcher = compile_mask(mask, options.match)
    return [
        e
        for e in area.candidates(probes(matcher))
        if matcher.matches(e) and (restrict_to is None or _scheduled_for(e, restrict_to))
    ]


def _has_station(mask: SearchMask) -> bool:
    """Does the query name a (non-universal) Scheduled Station AE Title?"""
    sps = find(mask.nodes, keys.SCHEDULED_PROCEDURE_STEP_SEQUENCE)
    if not isinstance(sps, MaskSequence) or not sps.items:
        return False
    station = find(sps.items[0], keys.SCHEDULED_STATION_AE_TITLE)
    if not isinstance(station, MaskElement):
        return False
    return not values.is_universal(values.split_values("AE", station.text), "AE")


def _scheduled_for(entry: WorklistEntry, station: str) -> bool:
    for item in entry.sps_text or []:
        text = item.get(keys.SCHEDULED_STATION_AE_TITLE) or ""
        if station in values.split_values("AE", text):
            return True
    return False
