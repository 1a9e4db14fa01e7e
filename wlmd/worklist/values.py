"""Value-level rules of PS3.4 C.2.2.2 as wlmscpfs 3.6.7 applies them.

Pure functions over ``str`` values: validation of query values (what makes a
request fail with 0xA900), universal/single-value/wildcard matching and
date/time range matching, including the combined date+time matching of
PS3.4 C.2.2.2.5.
"""

from __future__ import annotations

import datetime as _dt
import functools
import re
from dataclasses import dataclass

# --- validation of query values (dcmwlm CheckMatchingKey) ----------------------

_DA_QUERY = re.compile(r"\d{4}(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])")
_TM_QUERY = re.compile(r"([01]\d|2[0-3])([0-5]\d([0-5]\d(\.\d{1,6})?)?)?")

#: Characters wlmscpfs accepts in a CS matching key (upper case, digits, space, _, wildcards).
_CS_CHARS = frozenset("*?ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _")
#: AE: any printable ASCII character.
_AE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))
#: PN/LO/SH without a Specific Character Set in the request: printable ASCII but '~'.
_DEFAULT_REPERTOIRE = _AE_CHARS - {"~"}


def is_date(value: str) -> bool:
    """A syntactically valid DA value (YYYYMMDD), as DCMTK's scanner sees it."""
    return _DA_QUERY.fullmatch(value) is not None


def is_time(value: str) -> bool:
    """A syntactically valid TM value (HH[MM[SS[.F{1,6}]]])."""
    return _TM_QUERY.fullmatch(value) is not None


def _is_range_query(value: str, check) -> bool:  # type: ignore[no-untyped-def]
    """Each backslash-separated value is a single value or a range (multi-valued is fine)."""
    for part in value.split("\\"):
        first, sep, second = part.partition("-")
        if not sep:
            if not check(first):
                return False
        elif (first and not check(first)) or (second and not check(second)):
            return False
    return True


def date_query_problem(value: str) -> str | None:
    """Why ``value`` is not a valid DA matching key value, or None if it is."""
    value = value.strip(" ")
    if not value or _is_range_query(value, is_date):
        return None
    return "Invalid value for an attribute with VR=DA"


def time_query_problem(value: str) -> str | None:
    """Why ``value`` is not a valid TM matching key value, or None if it is."""
    value = value.strip(" ")
    if not value or _is_range_query(value, is_time):
        return None
    return "Invalid value for an attribute with VR=TM"


def repertoire_problem(vr: str, value: str, request_has_charset: bool) -> str | None:
    """Why a string matching key value is not acceptable, or None.

    As wlmscpfs: CS allows only upper case letters, digits, space, underscore
    and wildcards (so a multi-valued CS key fails); AE any printable ASCII;
    PN/LO/SH printable ASCII except '~' unless the request declares a Specific
    Character Set.
    """
    if not value:
        return None
    if vr == "CS":
        allowed = _CS_CHARS
    elif vr == "AE":
        allowed = _AE_CHARS
    elif vr in ("PN", "LO", "SH"):
        if request_has_charset:
            return None
        allowed = _DEFAULT_REPERTOIRE
    else:
        return None
    if all(ch in allowed for ch in value):
        return None
    return f"Invalid Character Repertoire for datatype {vr}"


# --- normalisation ---------------------------------------------------------------


def normalize(vr: str, value: str) -> str:
    """Strip insignificant spaces as DCMTK does before matching.

    Leading spaces are significant for PN, DA and TM only (trailing never are).
    """
    value = value.rstrip(" \x00")
    if vr not in ("PN", "DA", "TM"):
        value = value.lstrip(" ")
    return value


def split_values(vr: str, value: str) -> list[str]:
    """The normalised values of a (possibly multi-valued) string."""
    return [normalize(vr, v) for v in value.split("\\")]


def is_universal(values: list[str], vr: str = "") -> bool:
    """Universal matching (C.2.2.2.3): empty, or nothing but '*' in every value.

    wlmscpfs decides this before looking at the key's own matching type, so a
    lone '*' is universal even for PatientID, where wildcards are otherwise
    taken literally. For dates and times only an empty value is universal.
    """
    if vr in ("DA", "TM", "DT"):
        return all(not v for v in values)
    return all(not v.strip("*") for v in values)


# --- single value and wildcard matching -------------------------------------------


@functools.lru_cache(maxsize=4096)
def _wildcard_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "?":
            parts.append(".")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    """The compiled form of a non-empty wildcard pattern, for :meth:`re.Pattern.fullmatch`."""
    return _wildcard_regex(pattern)


def wildcard_match(pattern: str, candidate: str) -> bool:
    """'*' matches any sequence (also empty), '?' exactly one character."""
    if not pattern:
        return True
    return _wildcard_regex(pattern).fullmatch(candidate) is not None


def string_match(query: str, candidate: str, wildcards: bool) -> bool:
    """Single value matching, or wildcard matching when the key allows it."""
    if wildcards:
        return wildcard_match(query, candidate)
    return not query or query == candidate


def any_value_matches(queries: list[str], candidates: list[str], predicate) -> bool:  # type: ignore[no-untyped-def]
    """Multi-valued matching: some query value matches some candidate value."""
    return any(predicate(q, c) for q in queries for c in candidates)


# --- dates and times ---------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def parse_date(value: str) -> _dt.date | None:
    """A DA value (also the old 'YYYY.MM.DD' form) as a date, None if invalid.

    Cached: an area holds few distinct dates, and matching parses the
    candidate's date for every candidate of every query.
    """
    if len(value) == 10 and value[4] == "." and value[7] == ".":
        value = value[:4] + value[5:7] + value[8:]
    if len(value) != 8 or not value.isdigit():
        return None
    try:
        return _dt.date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def parse_time(value: str) -> float | None:
    """A TM value (also 'HH:MM[:SS[.F]]') as seconds since midnight, None if invalid (cached)."""
    if ":" in value:
        head, _, frac = value.partition(".")
        fields = head.split(":")
        if not 2 <= len(fields) <= 3 or not all(len(f) == 2 and f.isdigit() for f in fields):
            return None
        value = "".join(fields) + ("." + frac if frac else "")
    if len(value) < 2 or not value[:2].isdigit():
        return None
    hours = int(value[:2])
    minutes = 0
    seconds = 0.0
    rest = value[2:]
    if rest:
        if len(rest) < 2 or not rest[:2].isdigit():
            return None
        minutes = int(rest[:2])
        rest = rest[2:]
    if rest:
        if len(rest) < 2 or not rest[:2].isdigit():
            return None
        seconds = float(int(rest[:2]))
        rest = rest[2:]
        if rest:
            if rest[0] != "." or not rest[1:].isdigit():
                return None
            seconds += float("0" + rest)
    if hours > 23 or minutes > 59 or seconds > 60.0:
        return None
    return hours * 3600 + minutes * 60 + seconds


@functools.lru_cache(maxsize=4096)
def parse_datetime(value: str) -> tuple[_dt.date, float] | None:
    """A DT value (YYYY[MM[DD[HH[MM[SS[.F]]]]]], an offset ignored) as (date, seconds).

    Missing trailing components count from their start (month 1, day 1,
    midnight), as a DT range bound does in PS3.4 C.2.2.2.5. wlmscpfs has no
    DT keys; UPS matches Scheduled Procedure Step Start DateTime with it.
    """
    for sign in "+-":
        cut = value.find(sign, 4)
        if cut != -1:
            value = value[:cut]  # &ZZXX: the offset is not used for matching
    head, _, frac = value.partition(".")
    if len(head) not in (4, 6, 8, 10, 12, 14) or not head.isdigit():
        return None
    date = parse_date(head[:4] + (head[4:6] or "01") + (head[6:8] or "01"))
    if date is None:
        return None
    time_s = head[8:] + ("." + frac if frac and len(head) == 14 else "")
    seconds = parse_time(time_s) if time_s else 0.0
    return None if seconds is None else (date, seconds)


@dataclass(frozen=True)
class _Range:
    """A query value split at its first '-' (C.2.2.2.5)."""

    first: str
    second: str
    is_range: bool

    @classmethod
    def of(cls, value: str) -> _Range:
        first, sep, second = value.partition("-")
        return cls(first, second if sep else first, bool(sep))


class RangeQuery:
    """One DA or TM query value parsed once (C.2.2.2.5): single value or range.

    :meth:`accepts` takes a candidate already parsed (None when it could not
    be): matching a query against many candidates parses its bounds once.
    """

    __slots__ = ("_always", "_high", "_low", "_never", "_single")

    def __init__(self, query: str, parse) -> None:  # type: ignore[no-untyped-def]
        rng = _Range.of(query)
        #: An empty value matches every candidate, even an unparsable one.
        self._always = not query
        low = parse(rng.first) if rng.first else None
        high = parse(rng.second) if rng.second and rng.is_range else None
        #: A bound that does not parse matches nothing.
        self._never = bool(rng.first and low is None) or bool(
            rng.is_range and rng.second and high is None
        )
        self._single = not rng.is_range
        self._low = low
        self._high = high

    def accepts(self, candidate) -> bool:  # type: ignore[no-untyped-def]
        if self._always:
            return True
        if candidate is None or self._never:
            return False
        if self._single:
            return self._low == candidate
        return (self._low is None or self._low <= candidate) and (
            self._high is None or candidate <= self._high
        )


def date_query(query: str) -> RangeQuery:
    """A DA query value prepared for :meth:`RangeQuery.accepts` of parsed dates."""
    return RangeQuery(query, parse_date)


def time_query(query: str) -> RangeQuery:
    """A TM query value prepared for :meth:`RangeQuery.accepts` of parsed times."""
    return RangeQuery(query, parse_time)


def date_match(query: str, candidate: str) -> bool:
    """Single date or date range matching; an unparsable candidate never matches."""
    return date_query(query).accepts(parse_date(candidate))


def time_match(query: str, candidate: str) -> bool:
    """Single time or time range matching; an unparsable candidate never matches."""
    return time_query(query).accepts(parse_time(candidate))


def date_time_match(date_q: str, time_q: str, date_c: str, time_c: str) -> bool:
    """Combined date+time range matching (PS3.4 C.2.2.2.5.1), as DCMTK does it.

    When the date and time queries have the same range shape, they are taken
    together as one datetime range ("20240101-20240102" with "2200-0600" is
    22:00 on the 1st to 06:00 on the 2nd); otherwise each is matched alone.
    For many candidates, prepare the queries once with :class:`DateTimeQuery`.
    """
    return DateTimeQuery(date_q, time_q).accepts(date_c, time_c)


class DateTimeQuery:
    """A date and a time query value of one key pair, parsed once (C.2.2.2.5.1)."""

    __slots__ = (
        "_date",
        "_has_high",
        "_has_low",
        "_high",
        "_low",
        "_mode",
        "_never",
        "_single",
        "_time",
    )

    def __init__(self, date_q: str, time_q: str) -> None:
        self._date = date_query(date_q)
        self._time = time_query(time_q)
        self._never = False
        self._single = False
        self._low: tuple[_dt.date, float] | None = None
        self._high: tuple[_dt.date, float] | None = None
        self._has_low = self._has_high = False
        if not date_q:
            self._mode = "time"
            return
        if not time_q:
            self._mode = "date"
            return
        dq, tq = _Range.of(date_q), _Range.of(time_q)
        if (
            dq.is_range != tq.is_range
            or (not dq.first and tq.first)
            or (not dq.second and tq.second)
        ):
            self._mode = "separate"
            return
        self._mode = "combined"
        self._low = _pair(dq.first, tq.first)
        self._single = not dq.is_range
        if dq.first and self._low is None:
            self._never = True
        if dq.is_range:
            self._high = _pair(dq.second, tq.second)
            if dq.second and self._high is None:
                self._never = True
        #: Which bounds the combined range has (an open end has none).
        self._has_low = bool(dq.first)
        self._has_high = bool(dq.second)

    def accepts(self, date_c: str, time_c: str) -> bool:
        mode = self._mode
        if mode == "time":
            return self._time.accepts(parse_time(time_c))
        if mode == "date":
            return self._date.accepts(parse_date(date_c))
        candidate = _pair(date_c, time_c)
        if candidate is None:
            return False
        if mode == "separate":
            return self._date.accepts(candidate[0]) and self._time.accepts(candidate[1])
        if self._never:
            return False
        if self._single:
            return self._low == candidate
        return (not self._has_low or (self._low is not None and self._low <= candidate)) and (
            not self._has_high or (self._high is not None and candidate <= self._high)
        )


def _pair(date_s: str, time_s: str) -> tuple[_dt.date, float] | None:
    """A (date, seconds) bound; a missing time means midnight, as OFDateTime."""
    if not date_s:
        return None
    d = parse_date(date_s)
    if d is None:
        return None
    t = 0.0
    if time_s:
        parsed = parse_time(time_s)
        if parsed is None:
            return None
        t = parsed
    return (d, t)
