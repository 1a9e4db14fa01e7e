"""Value-level rules (PS3.4 C.2.2.2) as wlmscpfs 3.6.7 applies them.

Expectations come from DCMTK 3.6.7: dcmdata's VR scanner (vrscanl.l) for query
validation, DcmDate/DcmTime::getOFxxxFromString for parsing, dcmatch.cc for
wildcard, range and combined date+time matching.
"""

from __future__ import annotations

import datetime as dt

import pytest

from wlmd.worklist import values

DA_ERROR = "Invalid value for an attribute with VR=DA"
TM_ERROR = "Invalid value for an attribute with VR=TM"


# --- syntax of single DA / TM values ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("20240115", True),
        ("18500101", True),
        ("00010101", True),  # DCMTK's "dubious" years are still valid
        ("20241231", True),
        ("20240131", True),
        ("20240230", True),  # the scanner does not know month lengths
        ("20241301", False),  # month 13
        ("20240001", False),  # month 0
        ("20240100", False),  # day 0
        ("20240132", False),  # day 32
        ("2024011", False),
        ("202401150", False),
        ("2024-01-15", False),
        ("2024.01.15", False),  # old format is not accepted in a query
        ("", False),
        ("abcdefgh", False),
        ("2024011*", False),
    ],
)
def test_is_date(value: str, valid: bool) -> None:
    assert values.is_date(value) is valid


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("12", True),
        ("00", True),
        ("23", True),
        ("1230", True),
        ("123045", True),
        ("235959", True),
        ("123045.1", True),
        ("123045.123456", True),
        ("24", False),  # hour 24
        ("2400", False),
        ("1260", False),  # minute 60
        ("123", False),
        ("12304", False),
        ("123045.", False),
        ("123045.1234567", False),  # more than 6 fraction digits
        ("12:30", False),  # old format not accepted in a query
        ("1", False),
        ("", False),
        ("1a", False),
        ("12*", False),
    ],
)
def test_is_time(value: str, valid: bool) -> None:
    assert values.is_time(value) is valid


def test_is_time_rejects_leap_second_in_query() -> None:
    assert values.is_time("120060") is False


# --- validation of matching key values (CheckMatchingKey) ----------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", None),
        ("   ", None),
        ("20240101", None),
        (" 20240101 ", None),  # the whole value is trimmed first
        ("20240101-20240131", None),
        ("20240101-20240101", None),
        ("20240131-20240101", None),  # reversed: valid syntax, matches nothing
        ("-20240131", None),
        ("20240101-", None),
        ("-", None),
        ("2024", DA_ERROR),
        ("20241301", DA_ERROR),
        ("20240132", DA_ERROR),
        ("20240101-2024013", DA_ERROR),
        ("2024010-20240131", DA_ERROR),
        ("20240101 -20240131", DA_ERROR),  # spaces inside a range are not trimmed
        ("20240101- 20240131", DA_ERROR),
        ("20240101--20240131", DA_ERROR),
        ("*", DA_ERROR),
        ("2024*", DA_ERROR),
        ("2024.01.01", DA_ERROR),
    ],
)
def test_date_query_problem(value: str, problem: str | None) -> None:
    assert values.date_query_problem(value) == problem


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("", None),
        ("  ", None),
        ("1200", None),
        (" 1200 ", None),
        ("0800-1700", None),
        ("-1700", None),
        ("0800-", None),
        ("-", None),
        ("080000.5-170000.123456", None),
        ("2400", TM_ERROR),
        ("0860", TM_ERROR),
        ("0800-2500", TM_ERROR),
        ("08:00", TM_ERROR),
        ("*", TM_ERROR),
        ("08*", TM_ERROR),
        ("0800--1700", TM_ERROR),
    ],
)
def test_time_query_problem(value: str, problem: str | None) -> None:
    assert values.time_query_problem(value) == problem


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (values.date_query_problem, "20240101\\20240102"),
        (values.time_query_problem, "1200\\1300"),
    ],
)
def test_multi_valued_date_time_queries_are_valid(check, value: str) -> None:  # type: ignore[no-untyped-def]
    assert check(value) is None


@pytest.mark.parametrize(
    ("vr", "value", "has_charset", "bad"),
    [
        ("CS", "CT", False, False),
        ("CS", "A_B 1", False, False),
        ("CS", "C*?", False, False),
        ("CS", "ct", False, True),  # lower case
        ("CS", "ct", True, True),  # a charset does not help CS
        ("CS", "CT\\MR", False, True),  # backslash: multi-valued CS fails
        ("CS", "A-B", False, True),
        ("CS", "É", True, True),
        ("AE", "STATION~1", False, False),  # AE: every printable ASCII character
        ("AE", "a b{|}\\", False, False),
        ("AE", "ST\tX", False, True),
        ("AE", "STATIÖN", True, True),
        ("PN", "DOE^JOHN", False, False),
        ("PN", "DOE*^J?HN", False, False),
        ("PN", "DOE\\SMITH", False, False),
        ("PN", "Müller", False, True),  # non-ASCII without a request charset
        ("PN", "Müller", True, False),
        ("PN", "A~B", False, True),  # '~' is not in DCMTK's repertoire
        ("PN", "A~B", True, False),
        ("PN", "\x1b$B", False, True),  # ESC only with ISO 2022
        ("LO", "PID~1", False, True),
        ("LO", "PID\\2", False, False),
        ("LO", "Ärzte", True, False),
        ("SH", "É", False, True),
        ("SH", "ACC 1", False, False),
        ("LT", "anything ~ é", False, False),  # not a matching key VR: not checked
        ("DA", "garbage", False, False),
        ("PN", "", False, False),
        ("CS", "", False, False),
    ],
)
def test_repertoire_problem(vr: str, value: str, has_charset: bool, bad: bool) -> None:
    problem = values.repertoire_problem(vr, value, has_charset)
    if bad:
        assert problem == f"Invalid Character Repertoire for datatype {vr}"
    else:
        assert problem is None


# --- normalisation, universal matching ----------------------------------------------


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        ("PN", " DOE ", " DOE"),  # leading spaces significant for PN
        ("DA", " 20240101 ", " 20240101"),
        ("TM", " 1200 ", " 1200"),
        ("LO", " PID1 ", "PID1"),
        ("SH", "  A", "A"),
        ("CS", " CT\x00", "CT"),
        ("AE", " AE ", "AE"),
        ("LO", "", ""),
    ],
)
def test_normalize(vr: str, value: str, expected: str) -> None:
    assert values.normalize(vr, value) == expected


@pytest.mark.parametrize(
    ("vr", "value", "expected"),
    [
        ("LO", "A\\ B ", ["A", "B"]),
        ("PN", "A \\ B", ["A", " B"]),
        ("LO", "", [""]),
        ("CS", "\\", ["", ""]),
    ],
)
def test_split_values(vr: str, value: str, expected: list[str]) -> None:
    assert values.split_values(vr, value) == expected


@pytest.mark.parametrize(
    ("vals", "universal"),
    [
        ([""], True),
        (["*"], True),
        (["**"], True),
        (["*", "*"], True),
        (["*", ""], True),
        (["*a"], False),
        (["?"], False),
        (["a"], False),
        (["", "a"], False),
    ],
)
def test_is_universal(vals: list[str], universal: bool) -> None:
    assert values.is_universal(vals) is universal


# --- wildcard and single value matching ----------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "candidate", "matches"),
    [
        ("", "anything", True),  # empty pattern: universal
        ("", "", True),
        ("*", "", True),
        ("*", "abc", True),
        ("a*", "abc", True),  # trailing star
        ("a*", "a", True),
        ("a*", "bac", False),
        ("*c", "abc", True),  # leading star
        ("*c", "abd", False),
        ("a*c", "abbbc", True),  # middle star
        ("a*c", "ac", True),
        ("a*c", "acb", False),
        ("*b*", "abc", True),
        ("*b*", "ac", False),
        ("a**c", "abc", True),  # consecutive stars
        ("a*b*c", "aXbYc", True),  # several stars
        ("a*b*c", "acb", False),
        ("*a*a*", "banana", True),
        ("*a*a*a*a", "banana", False),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("a?c", "abbc", False),
        ("ab?", "abc", True),  # '?' at the end
        ("ab?", "ab", False),
        ("ab?", "abcd", False),
        ("?", "", False),
        ("?", "a", True),
        ("??", "a", False),
        ("?*", "", False),
        ("*?", "a", True),
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("abc", "ABC", False),  # case-sensitive
        ("a.c", "abc", False),  # regex characters are literal
        ("a+", "aa", False),
        ("[a]", "a", False),
        ("(a|b)", "a", False),
        ("DOE^*", "DOE^JOHN", True),
        ("*", "a\nb", True),
    ],
)
def test_wildcard_match(pattern: str, candidate: str, matches: bool) -> None:
    assert values.wildcard_match(pattern, candidate) is matches


@pytest.mark.parametrize(
    ("query", "candidate", "wildcards", "matches"),
    [
        ("*", "x", False, False),  # literal '*'
        ("*", "*", False, True),
        ("PID*", "PID*", False, True),
        ("PID*", "PID1", False, False),
        ("?", "a", False, False),
        ("", "x", False, True),
        ("a", "a", False, True),
        ("a", "A", False, False),
        ("a", "ab", False, False),
        ("a*", "abc", True, True),
        ("a?", "ab", True, True),
    ],
)
def test_string_match(query: str, candidate: str, wildcards: bool, matches: bool) -> None:
    assert values.string_match(query, candidate, wildcards) is matches


@pytest.mark.parametrize(
    ("queries", "candidates", "matches"),
    [
        (["A"], ["A"], True),
        (["X", "A"], ["A"], True),
        (["A"], ["X", "A"], True),
        (["X", "Y"], ["A", "B"], False),
        ([], ["A"], False),
        (["A"], [], False),
    ],
)
def test_any_value_matches(queries: list[str], candidates: list[str], matches: bool) -> None:
    assert values.any_value_matches(queries, candidates, lambda q, c: q == c) is matches


# --- parsing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240115", dt.date(2024, 1, 15)),
        ("2024.01.15", dt.date(2024, 1, 15)),  # pre-3.0 format
        ("20240229", dt.date(2024, 2, 29)),
        ("20230229", None),  # not a leap year
        ("20240230", None),
        ("20241315", None),
        ("2024011", None),
        ("202401150", None),
        ("", None),
        ("2024-01-15", None),
        ("2024.1.15", None),
        ("2024.01-15", None),
        ("abcdefgh", None),
        ("00000101", None),  # year 0 does not exist
    ],
)
def test_parse_date(value: str, expected: dt.date | None) -> None:
    assert values.parse_date(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12", 43200.0),
        ("1230", 45000.0),
        ("123045", 45045.0),
        ("123045.5", 45045.5),
        ("123045.123456", 45045.123456),
        ("000000", 0.0),
        ("235959.999999", 86399.999999),
        ("235960", 86400.0),  # a leap second is a valid candidate (OFTime: second <= 60)
        ("12:30", 45000.0),  # pre-3.0 formats
        ("12:30:45", 45045.0),
        ("12:30:45.25", 45045.25),
        ("24", None),
        ("1260", None),
        ("123061", None),
        ("123", None),
        ("12304", None),
        ("123045.", None),
        ("1230.5", None),
        ("12.5", None),
        ("", None),
        ("1", None),
        ("ab", None),
        ("12:3", None),
        ("12:30:4", None),
        ("12:30.5", None),
        ("12:3045", None),
    ],
)
def test_parse_time(value: str, expected: float | None) -> None:
    result = values.parse_time(value)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_parse_time_rejects_more_than_60_seconds() -> None:
    assert values.parse_time("235960.5") is None


def test_parse_time_accepts_long_fractions() -> None:
    assert values.parse_time("123045.1234567") == pytest.approx(45045.1234567, abs=1e-6)


# --- date and time matching -------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "candidate", "matches"),
    [
        ("", "garbage", True),
        ("20240115", "20240115", True),
        ("20240115", "20240116", False),
        ("20240115", "2024.01.15", True),  # old format candidate
        ("20240101-20240131", "20240101", True),  # inclusive lower bound
        ("20240101-20240131", "20240131", True),  # inclusive upper bound
        ("20240101-20240131", "20240115", True),
        ("20240101-20240131", "20240201", False),
        ("20240101-20240131", "20231231", False),
        ("-20240131", "19000101", True),
        ("-20240131", "20240201", False),
        ("20240101-", "29991231", True),
        ("20240101-", "20231231", False),
        ("-", "20240115", True),
        ("-", "garbage", False),  # an unparsable candidate never matches
        ("20240115", "garbage", False),
        ("20240115", "", False),
        ("2024011", "20240115", False),  # invalid query value
        ("20240101-2024013", "20240115", False),
        ("20240131-20240101", "20240115", False),  # reversed range
    ],
)
def test_date_match(query: str, candidate: str, matches: bool) -> None:
    assert values.date_match(query, candidate) is matches


@pytest.mark.parametrize(
    ("query", "candidate", "matches"),
    [
        ("", "garbage", True),
        ("1200", "1200", True),
        ("1200", "120000", True),
        ("12", "1200", True),
        ("1200", "1201", False),
        ("1200", "12:00", True),
        ("1200-1300", "1200", True),  # inclusive bounds
        ("1200-1300", "1300", True),
        ("1200-1300", "130001", False),
        ("1200-1300", "115959.999", False),
        ("-1300", "0000", True),
        ("-1300", "1301", False),
        ("1300-", "235959", True),
        ("1300-", "1259", False),
        ("-", "1234", True),
        ("1200", "garbage", False),
        ("1200-1300", "", False),
    ],
)
def test_time_match(query: str, candidate: str, matches: bool) -> None:
    assert values.time_match(query, candidate) is matches


@pytest.mark.parametrize(
    ("date_q", "time_q", "date_c", "time_c", "matches"),
    [
        # both single: one date+time instant
        ("20240115", "0930", "20240115", "0930", True),
        ("20240115", "0930", "20240115", "093000", True),
        ("20240115", "0930", "20240115", "093001", False),
        ("20240115", "0930", "20240116", "0930", False),
        # both ranges: one datetime range, spanning midnight
        ("20240101-20240102", "2200-0600", "20240101", "2300", True),
        ("20240101-20240102", "2200-0600", "20240101", "2200", True),  # inclusive
        ("20240101-20240102", "2200-0600", "20240102", "0600", True),  # inclusive
        ("20240101-20240102", "2200-0600", "20240102", "0500", True),
        ("20240101-20240102", "2200-0600", "20240101", "2159", False),
        ("20240101-20240102", "2200-0600", "20240102", "0601", False),
        ("20240101-20240102", "2200-0600", "20240101", "1200", False),
        ("20240101-20240103", "0800-1700", "20240102", "2000", True),  # separately: False
        ("20240101-20240103", "0800-1700", "20240101", "0700", False),
        ("20240101-20240103", "0800-1700", "20240103", "1701", False),
        # date range + single time: matched separately
        ("20240101-20240103", "1200", "20240102", "1200", True),
        ("20240101-20240103", "1200", "20240102", "1300", False),
        ("20240101-20240103", "1200", "20240104", "1200", False),
        # single date + time range: separately
        ("20240102", "0800-1700", "20240102", "1000", True),
        ("20240102", "0800-1700", "20240102", "1800", False),
        # both open at the beginning: combined
        ("-20240102", "-0600", "20240101", "2300", True),  # separately: False
        ("-20240102", "-0600", "20240102", "0700", False),
        ("-20240102", "-0600", "19990101", "1200", True),
        # both open at the end: combined
        ("20240101-", "2200-", "20240102", "0100", True),  # separately: False
        ("20240101-", "2200-", "20240101", "2100", False),
        # date open at the beginning, time not: separately
        ("-20240102", "0600-0800", "20240101", "0700", True),
        ("-20240102", "0600-0800", "20240101", "0900", False),  # combined would say True
        # date open at the end, time closed: separately
        ("20240101-", "0800-1000", "20240105", "0900", True),
        ("20240101-", "0800-1000", "20240105", "1200", False),
        # date closed range, time open at the beginning: combined, time bound midnight
        ("20240101-20240102", "-1000", "20240101", "2300", True),  # separately: False
        ("20240101-20240102", "-1000", "20240102", "1001", False),
        # date closed range, time open at the end: combined, upper bound at midnight
        ("20240101-20240102", "1000-", "20240101", "0900", False),
        ("20240101-20240102", "1000-", "20240101", "2300", True),
        ("20240101-20240102", "1000-", "20240102", "0000", True),
        ("20240101-20240102", "1000-", "20240102", "1100", False),  # separately: True
        # fully open ranges
        ("-", "-", "20240101", "1200", True),
        # empty date query: time only; empty time query: date only
        ("", "0800-1000", "garbage", "0900", True),
        ("", "0800-1000", "20240101", "1100", False),
        ("20240101", "", "20240101", "garbage", True),
        ("20240101", "", "20240102", "0900", False),
        # candidate problems
        ("20240101", "0000", "20240101", "", True),  # empty candidate time = midnight
        ("20240101", "0900", "garbage", "0900", False),
        ("20240101", "0900", "20240101", "garbage", False),
        ("20240101", "0900", "", "0900", False),
        # invalid query values never match
        ("2024010", "0900", "20240101", "0900", False),
        ("20240101", "09x0", "20240101", "0900", False),
        ("20240101-2024010", "0800-1000", "20240101", "0900", False),
    ],
)
def test_date_time_match(date_q: str, time_q: str, date_c: str, time_c: str, matches: bool) -> None:
    assert values.date_time_match(date_q, time_q, date_c, time_c) is matches
