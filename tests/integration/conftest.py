"""Module-scoped wlmd servers over small worklist areas, reached over real TCP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers import servers
from tests.helpers.servers import Server
from tests.helpers.worklists import complete_entry, make_area

AREA = "WLMD"


def entries() -> dict[str, object]:
    """Five complete entries; two scheduled on station FINDSCU (the default calling AE)."""
    station = "ScheduledStationAETitle"
    return {
        "a.wl": complete_entry(PatientID="IA1", PatientName="ALPHA^ONE", **{station: "FINDSCU"}),
        "b.wl": complete_entry(PatientID="IA2", PatientName="BRAVO^TWO", **{station: "FINDSCU"}),
        "c.wl": complete_entry(PatientID="IA3", PatientName="CHARLIE^THREE", **{station: "OTHER"}),
        "d.wl": complete_entry(
            PatientID="IA4", PatientName="DELTA^FOUR", Modality="MR", **{station: "OTHER"}
        ),
        "e.wl": complete_entry(PatientID="IA5", PatientName="ECHO^FIVE", **{station: "THIRD"}),
    }


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory, wlmd_available: None) -> Path:
    root = tmp_path_factory.mktemp("wlmd-data")
    make_area(root, AREA, entries())  # type: ignore[arg-type]
    make_area(root, "NOLOCK", [complete_entry()], lockfile=False)
    return root


@pytest.fixture(scope="module")
def start_wlmd(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., Server]]:
    """Start wlmd with extra options over ``data_root``; stopped when the module ends.

    Servers with the same options are shared within the module.
    """
    log_dir = tmp_path_factory.mktemp("wlmd-logs")
    started: dict[tuple[str, ...], Server] = {}
    with ExitStack() as stack:

        def start(*options: str) -> Server:
            if options not in started:
                started[options] = stack.enter_context(
                    servers.wlmd(data_root, options, log_dir=log_dir)
                )
            return started[options]

        yield start


@pytest.fixture(scope="module")
def wlmd_server(start_wlmd: Callable[..., Server]) -> Server:
    """wlmd with default options."""
    return start_wlmd()
