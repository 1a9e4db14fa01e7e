"""Packed entries (wlmd.worklist.packed): the views read back exactly what was packed."""

from __future__ import annotations

import random
from typing import Any

import pytest

from wlmd.worklist import packed
from wlmd.worklist.packed import ItemView, check, pack, shape


def _random_item(rng: random.Random, depth: int = 0) -> dict[int, Any]:
    item: dict[int, Any] = {}
    for tag in sorted(rng.sample(range(0x00080000, 0x00080000 + 400), rng.randint(0, 12))):
        if depth < 2 and rng.random() < 0.2:
            item[tag] = [_random_item(rng, depth + 1) for _ in range(rng.randint(0, 3))]
        else:
            item[tag] = bytes(rng.getrandbits(8) for _ in range(rng.choice((0, 1, 2, 7, 64))))
    return item


def _plain(view: Any) -> Any:
    """A view as nested dicts and lists, to compare with what was packed."""
    return {
        tag: value if isinstance(value, bytes) else [_plain(child) for child in value]
        for tag, value in view.items()
    }


@pytest.mark.parametrize("seed", range(40))
def test_views_give_back_every_value_in_order(seed: int) -> None:
    item = _random_item(random.Random(seed))
    layout, blob = pack(item)
    view = ItemView(layout, blob)
    assert _plain(view) == item
    assert list(view) == list(item)  # the file's order
    assert len(view) == len(item)
    check(layout, blob)


def test_absent_tags_and_mapping_protocol() -> None:
    item = {0x00100010: b"DOE^JOHN", 0x00400100: [{0x00080060: b"CT"}, {}]}
    view = ItemView(*pack(item))
    assert view.get(0x00100020) is None
    assert view.get(0x00100020, b"x") == b"x"
    assert 0x00100010 in view and 0x00100020 not in view
    with pytest.raises(KeyError):
        view[0x00100020]
    steps = view[0x00400100]
    assert isinstance(steps, list) and steps[0] == {0x00080060: b"CT"} and steps[1] == {}
    assert view == item  # Mapping equality, recursively


def test_entries_of_one_shape_share_one_layout() -> None:
    first, _ = pack({0x00100020: b"P1", 0x00400100: [{0x00080060: b"CT"}]})
    second, _ = pack({0x00100020: b"PATIENT-2", 0x00400100: [{0x00080060: b"MR"}]})
    other, _ = pack({0x00100020: b"P1"})
    assert first is second
    assert other is not first


def test_a_blob_over_64_kib_uses_wide_offsets() -> None:
    item = {0x00104000: b"x" * 70_000, 0x00100020: b"P1"}
    layout, blob = pack(item)
    assert layout.width == 4
    assert ItemView(layout, blob) == item
    narrow, _ = pack({0x00104000: b"x" * 10, 0x00100020: b"P1"})
    assert narrow.width == 2 and narrow is not layout


def test_new_shapes_beyond_the_sharing_limit_are_still_read_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(packed, "_SHAPE_LIMIT", 0)
    item = {0x7FE10010 + n: b"v%d" % n for n in range(3)}
    layout, blob = pack(item)
    assert ItemView(layout, blob) == item
    assert pack(item)[0] is not layout  # not kept, so not shared


@pytest.mark.parametrize(
    "damage",
    [
        lambda blob: blob[:-1],  # last value cut
        lambda blob: blob[:3],  # inside the table
        lambda blob: b"\xff\xff" + blob[2:],  # first offset wrong
        lambda blob: blob + b"x",  # trailing byte
    ],
)
def test_check_refuses_a_blob_that_does_not_fit_its_layout(damage: Any) -> None:
    layout, blob = pack({0x00100010: b"DOE", 0x00100020: b"P1"})
    with pytest.raises(ValueError):
        check(layout, damage(blob))


def test_check_refuses_offsets_out_of_order() -> None:
    layout, blob = pack({0x00100010: b"DOE", 0x00100020: b"P1"})
    table = bytearray(blob)
    table[2:4] = (len(blob) + 1).to_bytes(2, "little")  # value 1 starts after value 2 ends
    with pytest.raises(ValueError):
        check(layout, bytes(table))


def test_shape_refuses_a_malformed_key() -> None:
    with pytest.raises(ValueError):
        shape(3, (0x00100010,))
    with pytest.raises((ValueError, TypeError)):
        shape(2, (("not a tag", ()),))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        shape(2, (0x00100020, 0x00100020))  # a tag twice: one value would be unreachable
