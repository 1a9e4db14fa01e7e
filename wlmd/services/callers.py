"""Which calling AE titles may query which storage area (``--allowed-callers FILE``).

An optional allow-list, so that a modality only sees its own department's
worklist: a CT in radiology cannot ask the cardiology area. The file belongs
to the administrator, not to the RIS that writes the worklist files, so it
lives outside the storage areas::

    # storage area   calling AE titles allowed to query it
    RADIOLOGY        CT01 CT02 MR_3T
    CARDIO           ECHO1

An area that is not listed is open to every caller (as without the file);
a listed area is open only to the titles on its line. Titles are compared
exactly, without trailing spaces, as DICOM AE titles are. Any bad line stops
start-up with ``FILE:LINE: reason``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from wlmd.worklist.layout import is_valid_area_name


class CallerListError(Exception):
    """A bad ``--allowed-callers`` file; ``str()`` is ``FILE:LINE: reason``."""


@dataclass(frozen=True)
class CallerList:
    path: str
    allowed: Mapping[str, frozenset[str]]

    def allows(self, area: str, calling_ae: str) -> bool:
        titles = self.allowed.get(area.rstrip(" "))
        return titles is None or calling_ae.strip(" ") in titles


def parse(text: str, path: str) -> CallerList:
    allowed: dict[str, frozenset[str]] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        area, titles = words[0], words[1:]
        where = f"{path}:{number}"
        if not is_valid_area_name(area):
            raise CallerListError(f"{where}: {area!r} cannot be a storage area name")
        if area in allowed:
            raise CallerListError(f"{where}: {area} listed twice (also on line {first_line[area]})")
        if not titles:
            raise CallerListError(
                f"{where}: no calling AE title for {area} (an area nobody may query: remove it)"
            )
        for title in titles:
            if len(title) > 16 or "\\" in title or not title.isprintable():
                raise CallerListError(f"{where}: {title!r} is not an AE title (1-16 characters)")
        allowed[area] = frozenset(titles)
        first_line[area] = number
    return CallerList(path, allowed)


def read(path: str) -> CallerList:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CallerListError(f"{path}: {reason}") from None
    return parse(text, path)
