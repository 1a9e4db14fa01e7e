"""Routing by called AE title (wlmd.services.routing): storage areas, configured titles, both."""

from __future__ import annotations

from pathlib import Path

import pytest

from wlmd.association.dimse import Service
from wlmd.association.report import AssociationLog
from wlmd.services.echo import VERIFICATION
from wlmd.services.routing import Offer, Router, unknown_title_reason
from wlmd.worklist.store import WorklistStore

MWL = "1.2.840.10008.5.1.4.31"
UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"


def worklist(log: AssociationLog) -> Service:
    return Service("modality worklist", (MWL,), {})


def ups(log: AssociationLog) -> Service:
    return Service("ups", (UPS_PUSH,), {})


@pytest.fixture
def router(tmp_path: Path) -> Router:
    for area in ("WLMD", "BOTH"):
        (tmp_path / area).mkdir()
        (tmp_path / area / "lockfile").touch()
    store = WorklistStore(str(tmp_path), False)
    return Router(store, worklist, [("ups", ["UPS_ONLY", "BOTH"], ups)])


@pytest.mark.parametrize(
    ("called", "offer", "syntaxes"),
    [
        ("WLMD", Offer("WLMD", True), [VERIFICATION, MWL]),
        ("WLMD  ", Offer("WLMD", True), [VERIFICATION, MWL]),  # AE titles are space-padded
        ("UPS_ONLY", Offer("UPS_ONLY", False, ("ups",)), [VERIFICATION, UPS_PUSH]),
        ("BOTH", Offer("BOTH", True, ("ups",)), [VERIFICATION, MWL, UPS_PUSH]),
        ("NOSUCH", Offer("NOSUCH", False), []),
        ("wlmd", Offer("wlmd", False), []),  # AE titles are case-sensitive, as areas are
    ],
)
def test_a_called_ae_title_offers_what_its_area_and_the_configuration_give(
    router: Router, called: str, offer: Offer, syntaxes: list[str]
) -> None:
    got = router.offer(called)
    assert got == offer
    assert got.known is bool(syntaxes)
    services = router.services(got, AssociationLog("a.1", "127.0.0.1:1"))
    assert [uid for s in services for uid in s.abstract_syntaxes] == syntaxes


def test_an_area_created_later_is_offered_without_a_restart(router: Router) -> None:
    assert not router.offer("LATER").known
    root = Path(router.store.root)
    (root / "LATER").mkdir()
    (root / "LATER" / "lockfile").touch()
    assert router.offer("LATER") == Offer("LATER", True)


def test_the_rejection_names_the_data_path_and_the_configured_titles(router: Router) -> None:
    reason = unknown_title_reason("NOSUCH", "/srv/wl", router)
    assert reason == (
        "called AE title 'NOSUCH' has no storage area in /srv/wl "
        "and offers no other service (ups: BOTH, UPS_ONLY)"
    )
    plain = Router(router.store, worklist)
    assert unknown_title_reason("NOSUCH", "/srv/wl", plain) == (
        "called AE title 'NOSUCH' has no storage area in /srv/wl"
    )


def test_names_list_verification_first(router: Router) -> None:
    assert router.offer("BOTH").names == ("verification", "modality worklist", "ups")
    assert router.offer("NOSUCH").names == ()
