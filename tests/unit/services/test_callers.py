"""--allowed-callers: the per-area calling AE allow-list file."""

from __future__ import annotations

import pytest

from wlmd.services.callers import CallerListError, parse

TEXT = """
# area        callers
RADIOLOGY     CT01 CT02   # two CTs
CARDIO        ECHO1
"""


def test_listed_area_admits_only_its_callers_and_unlisted_areas_stay_open() -> None:
    callers = parse(TEXT, "callers")
    assert callers.allows("RADIOLOGY", "CT01")
    assert callers.allows("RADIOLOGY", "CT02  ")  # AE titles: trailing spaces do not count
    assert not callers.allows("RADIOLOGY", "ECHO1")
    assert not callers.allows("RADIOLOGY", "ct01")  # exact, as AE titles compare
    assert callers.allows("CARDIO", "ECHO1")
    assert callers.allows("OTHER", "ANYONE")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("RADIOLOGY", r"callers:1: no calling AE title for RADIOLOGY"),
        ("../etc CT01", r"callers:1: '../etc' cannot be a storage area name"),
        ("A CT01\nA CT02", r"callers:2: A listed twice \(also on line 1\)"),
        ("A THIS_IS_LONGER_THAN_16", r"callers:1: 'THIS_IS_LONGER_THAN_16' is not an AE title"),
        ("A CT\\01", r"is not an AE title"),
    ],
)
def test_bad_lines_name_file_line_and_reason(text: str, message: str) -> None:
    with pytest.raises(CallerListError, match=message):
        parse(text, "callers")
