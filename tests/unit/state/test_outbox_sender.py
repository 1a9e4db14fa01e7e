"""What the event sender needs from the outbox, on both backends: claims for one
subscriber or all but the busy ones, and leases of a killed sender given back."""

from __future__ import annotations

from pydicom.dataset import Dataset

from tests.helpers.ups import scheduled
from wlmd.state.repository import UpsRepository


def watch(repo: UpsRepository, uid: str, ae: str) -> None:
    ds = Dataset()
    ds.ReceivingAE = ae
    ds.DeletionLock = "FALSE"
    assert repo.subscribe(uid, ds).status == 0


def test_claim_for_one_subscriber_or_all_but_busy_ones(repo: UpsRepository) -> None:
    uid = repo.create(None, scheduled()).uid
    for ae in ("ONE", "TWO", "THREE"):
        watch(repo, uid, ae)
    mine = repo.outbox.claim("a", subscriber="TWO")
    assert [d.subscriber for d in mine] == ["TWO"]
    others = repo.outbox.claim("a", exclude=("ONE",))
    assert [d.subscriber for d in others] == ["THREE"]  # TWO's is leased, ONE's excluded
    assert [d.subscriber for d in repo.outbox.claim("a")] == ["ONE"]


def test_release_gives_back_a_dead_senders_leases_only(repo: UpsRepository) -> None:
    uid = repo.create(None, scheduled()).uid
    watch(repo, uid, "ONE")
    watch(repo, uid, "TWO")
    assert len(repo.outbox.claim("host:104:17", subscriber="ONE")) == 1
    assert len(repo.outbox.claim("other:104:9", subscriber="TWO")) == 1
    assert repo.outbox.claim("host:104:18") == []
    assert repo.outbox.release("host:104:") == 1
    (again,) = repo.outbox.claim("host:104:18")
    assert again.subscriber == "ONE"  # TWO's lease belongs to another node
