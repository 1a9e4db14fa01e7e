"""wlmscpfs's storage layout: ``<data-files-path>/<CalledAETitle>/*.wl`` and a ``lockfile``.

The names a called AE title may give a storage area, the file names wlmd
reads (DCMTK wlmsetup.txt), and the error that makes a query fail rather
than answer "nothing scheduled" when an area cannot be used.
"""

from __future__ import annotations

import os
import re

LOCKFILE_NAME = "lockfile"
WORKLIST_SUFFIX = ".wl"  # case-sensitive, as wlmscpfs
MAX_FILE_SIZE = 64 * 1024 * 1024  # no worklist entry is this big; protects memory

#: Called AE titles that may name a storage area: 1-16 of letters, digits,
#: space and ``- : @ _`` — never '.', '/' or anything that could leave the data path.
_AREA_NAME = re.compile(r"[A-Za-z0-9 :@_-]{1,16}")


def is_valid_area_name(called_ae_title: str) -> bool:
    """True if the called AE title can name a storage area (no path tricks)."""
    name = called_ae_title.strip(" ")
    return bool(name) and _AREA_NAME.fullmatch(called_ae_title.rstrip(" ")) is not None


def storage_area_names(data_files_path: str) -> list[str]:
    """The storage areas under ``data_files_path``, sorted: directories with a
    lockfile whose name can be a called AE title. OSError if it cannot be listed."""
    with os.scandir(data_files_path) as it:
        return sorted(
            e.name
            for e in it
            if e.is_dir()
            and is_valid_area_name(e.name)
            and os.path.exists(os.path.join(e.path, LOCKFILE_NAME))
        )


class AreaUnavailable(Exception):
    """The storage area cannot be used right now; the text is for operators.

    A query then fails (0xA700) rather than answering "nothing scheduled":
    an empty worklist on the modality would hide the problem.
    ``comment`` is the short text sent to the modality as Error Comment (LO, 64 chars).
    """

    def __init__(self, message: str, comment: str = "Worklist storage area cannot be read") -> None:
        super().__init__(message)
        self.comment = comment
