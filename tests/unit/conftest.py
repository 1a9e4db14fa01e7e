"""Shared builders for the unit tests: worklist files, entries and wire-format requests.

Requests are encoded and decoded again (``wire``) so that the search mask sees
what the network layer hands over: raw, undecoded elements.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode, encode

from tests.helpers.worklists import complete_entry, query, write_wl
from wlmd.worklist.entry import WorklistEntry, load_entry
from wlmd.worklist.searchmask import SearchMask, check_search_mask


def wire(ds: Dataset, implicit: bool = True) -> Dataset:
    """``ds`` as a C-FIND identifier arrives: encoded, then lazily decoded."""
    return decode(BytesIO(encode(ds, implicit, True)), implicit, True)


def mask_of(sq_expansion: bool = True, **keys: Any) -> SearchMask:
    """The checked search mask of a request built with ``query(**keys)``."""
    return check_search_mask(wire(query(**keys)), sq_expansion)


@pytest.fixture
def make_entry(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write ``complete_entry(**overrides)`` (or a given Dataset) and load it."""
    counter = iter(range(10_000))

    def build(ds: Dataset | None = None, **overrides: Any) -> WorklistEntry:
        name = f"e{next(counter):04d}.wl"
        path = write_wl(tmp_path / name, ds if ds is not None else complete_entry(**overrides))
        return load_entry(str(path), name)

    return build
