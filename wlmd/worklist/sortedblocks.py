"""Sorted (key, slot) pairs and sorted slots, in blocks: a change costs the same at any size.

The worklist index (:mod:`wlmd.worklist.index`) keeps its file names and
PatientName values sorted, for file-name order and prefix lookups. As one
sorted Python list (with the slots in an ``array`` beside it) every added or
removed entry moved, on average, half of it: 4 MB of pointers at 1,000,000
entries, and in a forked worker (spare workers serve the first query after a
change) each page moved is first copied. Issue 16 measured a changed file
visible 539 ms after the change at 1,000,000 entries, 30 ms at 100,000.

Here the pairs are cut into blocks of at most ``2 * BLOCK``, with each block's
last key in a list of its own to find the block by bisection (the layout of
the ``sortedcontainers`` package's SortedList, which wlmd does not depend on).
A change moves at most one block (a few pages) and the short list of block
ends; order and lookups are those of the single sorted list: a key is
inserted before equal keys (``bisect_left``), a range is every key ``lo <= key
< hi``.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain

#: Pairs per block after a split (blocks hold BLOCK // 4 .. 2 * BLOCK pairs,
#: except a lone one). 1,000 pairs: 8 kB of pointers, 4 kB of slots.
BLOCK = 1000


class SortedPairs:
    """(key, slot) pairs by key, as ``keys`` (sorted) and ``slots`` would hold them."""

    def __init__(self, keys: Sequence[str] = (), slots: Sequence[int] = ()) -> None:
        """The pairs ``zip(keys, slots)``; ``keys`` must already be sorted."""
        if len(keys) != len(slots):
            raise ValueError("keys and slots differ in length")
        self._keys: list[list[str]] = []
        self._slots: list[array[int]] = []
        self._ends: list[str] = []  # each block's last key
        for start in range(0, len(keys), BLOCK):
            self._append_block(list(keys[start : start + BLOCK]), slots[start : start + BLOCK])
        self._len = len(keys)

    def _append_block(self, keys: list[str], slots: Sequence[int]) -> None:
        self._keys.append(keys)
        self._slots.append(slots if isinstance(slots, array) else array("I", slots))
        self._ends.append(keys[-1])

    def __len__(self) -> int:
        return self._len

    def keys(self) -> Iterator[str]:
        return chain.from_iterable(self._keys)

    def slots(self) -> Iterator[int]:
        return chain.from_iterable(self._slots)

    def slots_bytes(self) -> bytes:
        """Every slot, in key order, as the bytes of one ``array('I')``."""
        return b"".join(block.tobytes() for block in self._slots)

    def insert(self, key: str, slot: int) -> None:
        """Add the pair, before any pair with an equal key."""
        if not self._keys:
            self._append_block([key], [slot])
            self._len = 1
            return
        b = bisect.bisect_left(self._ends, key)
        if b == len(self._keys):  # beyond every key: at the end of the last block
            b -= 1
            at = len(self._keys[b])
        else:
            at = bisect.bisect_left(self._keys[b], key)
        keys, slots = self._keys[b], self._slots[b]
        keys.insert(at, key)
        slots.insert(at, slot)
        self._ends[b] = keys[-1]
        self._len += 1
        if len(keys) > 2 * BLOCK:
            half = len(keys) // 2
            self._keys.insert(b + 1, keys[half:])
            self._slots.insert(b + 1, slots[half:])
            self._ends.insert(b + 1, keys[-1])
            del keys[half:]
            del slots[half:]
            self._ends[b] = keys[-1]

    def remove(self, key: str, slot: int) -> bool:
        """Remove the pair (key, slot); False if there is none."""
        b, at = self._first_at_least(key)
        while b < len(self._keys):
            keys, slots = self._keys[b], self._slots[b]
            while at < len(keys) and keys[at] == key:
                if slots[at] == slot:
                    del keys[at]
                    del slots[at]
                    self._len -= 1
                    self._after_removal(b)
                    return True
                at += 1
            if at < len(keys):
                return False
            b, at = b + 1, 0
        return False

    def _after_removal(self, b: int) -> None:
        """Drop an empty block, merge a small one into its successor; keep the ends right."""
        keys, slots = self._keys[b], self._slots[b]
        if not keys:
            del self._keys[b], self._slots[b], self._ends[b]
            return
        self._ends[b] = keys[-1]
        if len(keys) < BLOCK // 4 and b + 1 < len(self._keys):
            following = self._keys[b + 1]
            if len(keys) + len(following) <= 2 * BLOCK:
                keys.extend(following)
                slots.extend(self._slots[b + 1])
                self._ends[b] = keys[-1]
                del self._keys[b + 1], self._slots[b + 1], self._ends[b + 1]

    def _first_at_least(self, key: str) -> tuple[int, int]:
        """(block, offset) of the first pair whose key is >= ``key``."""
        b = bisect.bisect_left(self._ends, key)
        if b == len(self._keys):
            return b, 0
        return b, bisect.bisect_left(self._keys[b], key)

    def _pieces(self, lo: str, hi: str) -> list[tuple[int, int, int]]:
        """(block, start, end) of the pairs with ``lo <= key < hi``, in order."""
        b, start = self._first_at_least(lo)
        pieces = []
        while b < len(self._keys):
            keys = self._keys[b]
            end = bisect.bisect_left(keys, hi, start)
            if end > start:
                pieces.append((b, start, end))
            if end < len(keys):
                break
            b, start = b + 1, 0
        return pieces

    def slots_between(self, lo: str, hi: str) -> Iterator[int]:
        """The slots of the pairs with ``lo <= key < hi``, in key order."""
        return chain.from_iterable(
            self._slots[b][start:end] for b, start, end in self._pieces(lo, hi)
        )


class SortedSlots:
    """A long posting (thousands of slots: one modality's, one day's entries) in blocks.

    Kept in slot order, so that removing a slot finds it by bisection and
    moves one block, where a single array was searched through (its bytes
    copied) and shifted from the slot on: ~1 ms per change for one
    modality's 200,000 slots at 1,000,000 entries, and in a forked worker
    a copy of every page after the slot.
    """

    def __init__(self, slots: Iterable[int] = ()) -> None:
        ordered = array("I", sorted(slots))
        self._blocks = [ordered[start : start + BLOCK] for start in range(0, len(ordered), BLOCK)]
        self._ends = [block[-1] for block in self._blocks]  # each block's largest slot
        self._len = len(ordered)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        return chain.from_iterable(self._blocks)

    def __contains__(self, slot: object) -> bool:
        return isinstance(slot, int) and self._find(slot) is not None

    def _find(self, slot: int) -> tuple[int, int] | None:
        """(block, offset) of ``slot``, or None when it is not held."""
        b = bisect.bisect_left(self._ends, slot)
        if b == len(self._blocks):
            return None
        block = self._blocks[b]
        at = bisect.bisect_left(block, slot)
        return (b, at) if at < len(block) and block[at] == slot else None

    def tobytes(self) -> bytes:
        """The slots (in slot order) as the bytes of one ``array('I')``."""
        return b"".join(block.tobytes() for block in self._blocks)

    def add(self, slot: int) -> None:
        """Add ``slot`` (not already held: an entry adds each of its values once)."""
        if not self._blocks:
            self._blocks.append(array("I", (slot,)))
            self._ends.append(slot)
            self._len = 1
            return
        b = min(bisect.bisect_left(self._ends, slot), len(self._blocks) - 1)
        block = self._blocks[b]
        block.insert(bisect.bisect_left(block, slot), slot)
        self._ends[b] = block[-1]
        self._len += 1
        if len(block) > 2 * BLOCK:
            half = len(block) // 2
            self._blocks.insert(b + 1, block[half:])
            self._ends.insert(b + 1, block[-1])
            del block[half:]
            self._ends[b] = block[-1]

    def remove(self, slot: int) -> bool:
        """Remove ``slot``; False if it is not held."""
        found = self._find(slot)
        if found is None:
            return False
        b, at = found
        block = self._blocks[b]
        del block[at]
        self._len -= 1
        if not block:
            del self._blocks[b], self._ends[b]
            return True
        self._ends[b] = block[-1]
        if len(block) < BLOCK // 4 and b + 1 < len(self._blocks):
            following = self._blocks[b + 1]
            if len(block) + len(following) <= 2 * BLOCK:
                block.extend(following)
                self._ends[b] = block[-1]
                del self._blocks[b + 1], self._ends[b + 1]
        return True
