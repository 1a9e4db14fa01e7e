"""SortedPairs against one sorted list of pairs (what the worklist index held before),
SortedSlots against a set.

Blocks are made tiny (BLOCK = 8: split above 16, merged below 2) so that
random sequences split, merge and empty blocks and spread runs of equal keys
over several of them.
"""

from __future__ import annotations

import bisect
import random

import pytest

from wlmd.worklist import sortedblocks
from wlmd.worklist.sortedblocks import SortedPairs, SortedSlots

KEYS = ["", "A", "AB", "ABC", "B", "BA", "DOE^JOHN", "DOE^JANE", "DÖ", "Ω", "\U0010ffff"]


@pytest.fixture(autouse=True)
def tiny_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sortedblocks, "BLOCK", 8)


def _check(pairs: SortedPairs, reference: list[tuple[str, int]], rng: random.Random) -> None:
    assert len(pairs) == len(reference)
    assert list(pairs.keys()) == [k for k, _ in reference]
    # As in one list with bisect_left insertions: a new pair goes before equal keys.
    assert list(zip(pairs.keys(), pairs.slots(), strict=True)) == reference
    assert pairs.slots_bytes() == sortedblocks.array("I", pairs.slots()).tobytes()
    for _ in range(5):
        lo = rng.choice(KEYS)
        hi = lo + "\U0010ffff" if rng.random() < 0.7 else rng.choice(KEYS)
        expected = sorted(s for k, s in reference if lo <= k < hi)
        assert len(list(pairs.slots_between(lo, hi))) == len(expected), (lo, hi)
        assert sorted(pairs.slots_between(lo, hi)) == expected, (lo, hi)
    blocks = pairs._keys
    assert all(blocks) and len(pairs._ends) == len(blocks)
    assert pairs._ends == [block[-1] for block in blocks]
    assert all(len(block) <= 2 * sortedblocks.BLOCK for block in blocks)


@pytest.mark.parametrize("seed", range(6))
def test_random_inserts_and_removals_keep_one_sorted_list(seed: int) -> None:
    rng = random.Random(seed)
    start = sorted((rng.choice(KEYS), n) for n in range(rng.randint(0, 30)))
    pairs = SortedPairs([k for k, _ in start], [s for _, s in start])
    reference = list(start)
    next_slot = len(start)
    for _ in range(400):
        if reference and rng.random() < 0.45:
            key, slot = reference.pop(rng.randrange(len(reference)))
            assert pairs.remove(key, slot)
        else:
            key, slot = rng.choice(KEYS), next_slot
            next_slot += 1
            reference.insert(bisect.bisect_left(reference, (key,)), (key, slot))
            pairs.insert(key, slot)
        if rng.random() < 0.1:
            assert not pairs.remove(rng.choice(KEYS), next_slot + 1)  # absent pair
        _check(pairs, reference, rng)


def test_long_runs_of_one_key_span_blocks() -> None:
    """Every pair with the same key (a common PatientName): found and removed across blocks."""
    pairs = SortedPairs()
    for slot in range(50):
        pairs.insert("DOE", slot)
    pairs.insert("A", 99)
    pairs.insert("Z", 98)
    assert len(pairs._keys) > 2
    assert len(list(pairs.slots_between("DOE", "DOE\U0010ffff"))) == 50
    for slot in [0, 49, 25, *range(1, 25)]:
        assert pairs.remove("DOE", slot)
    assert sorted(pairs.slots_between("DOE", "DOF")) == list(range(26, 49))
    assert list(pairs.keys()) == ["A", *["DOE"] * 23, "Z"]


def test_keys_and_slots_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError):
        SortedPairs(["A"], [])


@pytest.mark.parametrize("seed", range(4))
def test_sorted_slots_hold_what_a_set_holds(seed: int) -> None:
    rng = random.Random(seed)
    start = rng.sample(range(200), rng.randint(0, 40))
    held = SortedSlots(start)
    reference = set(start)
    for _ in range(500):
        slot = rng.randrange(200)
        if slot not in reference:
            assert not held.remove(slot)  # absent, maybe between held ones
        if slot in reference:
            assert held.remove(slot)
            reference.discard(slot)
        else:
            held.add(slot)
            reference.add(slot)
        assert not held.remove(200 + rng.randrange(5))  # never held
        assert len(held) == len(reference)
        assert list(held) == sorted(reference)
        probe = rng.randrange(-1, 206)
        assert (probe in held) == (probe in reference)
        assert held.tobytes() == sortedblocks.array("I", sorted(reference)).tobytes()
        assert all(held._blocks) and held._ends == [block[-1] for block in held._blocks]
        assert all(len(block) <= 2 * sortedblocks.BLOCK for block in held._blocks)


def test_a_block_almost_emptied_is_merged_into_the_next() -> None:
    keys = [f"K{n:02d}" for n in range(24)]  # three blocks of BLOCK = 8
    pairs = SortedPairs(keys, list(range(24)))
    slots = SortedSlots(range(24))
    assert len(pairs._keys) == 3 and len(slots._blocks) == 3
    for n in range(7):
        assert pairs.remove(keys[n], n)
        assert slots.remove(n)
    assert len(pairs._keys) == 2 and len(slots._blocks) == 2  # 1 + 8 merged
    assert list(zip(pairs.keys(), pairs.slots(), strict=True)) == [
        (k, n) for n, k in enumerate(keys) if n >= 7
    ]
    assert pairs._ends == [block[-1] for block in pairs._keys]
    assert list(slots) == list(range(7, 24))
    assert slots._ends == [block[-1] for block in slots._blocks]
