"""Split assignment: stratified by slice, whole near-duplicate families at a time, seeded.

A family is every example that shares a `family` key (the dup group, or the example alone). A family
goes to exactly one split, so a near duplicate can never sit in train while its twin is in eval. In
each slice, families are taken in a seeded hash order until the slice's share of the split is met,
which keeps every slice represented in proportion (and rare slices get at least one example in a
split once they have enough members to spare one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_SLICE_FOR_ONE = 5


@dataclass(frozen=True, slots=True)
class SplitItem:
    key: str
    slice: str
    family: str


def stratified_pick(
    items: Iterable[SplitItem], fraction: float, *, seed: int, max_items: int | None = None
) -> set[str]:
    """Keys of about `fraction` of the items, per slice, taking whole families; at most `max_items`
    (a bound the at-least-one rule for small slices may overshoot by a few)."""
    items = list(items)
    if fraction <= 0 or not items:
        return set()
    sizes = _slice_sizes(items)
    fraction = _scaled(fraction, sizes, max_items)
    picked = _fill(items, {name: _target(size, fraction) for name, size in sizes.items()}, seed)
    return {key for _, keys in picked for key in keys}


def top_up_pick(
    new_items: Iterable[SplitItem],
    slice_sizes: Mapping[str, int],
    held: Mapping[str, int],
    fraction: float,
    *,
    seed: int,
    max_items: int | None = None,
) -> set[str]:
    """Keys of new items that bring each slice's held-out count up to its share, within `max_items`.

    slice_sizes: every eligible example per slice (held, new and the rest); held: what each slice holds
    already (e.g. carried eval rows). A slice's share is `fraction` of its size (scaled down so the
    total fits `max_items`); its deficit (share - held, never negative) is filled with whole families of
    new items in seeded hash order. The picks are then trimmed to the room `max_items` leaves beside
    what is held, so the total never exceeds it. Held items are never dropped. With nothing held and
    every item new, the picks are `stratified_pick`'s (up to that trim).
    """
    items = list(new_items)
    if fraction <= 0 or not items:
        return set()
    fraction = _scaled(fraction, slice_sizes, max_items)
    needs = {name: _target(size, fraction) - held.get(name, 0) for name, size in slice_sizes.items()}
    picked = _fill(items, needs, seed)
    if max_items is None:
        return {key for _, keys in picked for key in keys}
    room = max(0, max_items - sum(held.values()))
    kept: set[str] = set()
    for _, keys in sorted(picked):  # by seeded rank: which families to drop is stable
        if len(kept) + len(keys) <= room:
            kept.update(keys)
    return kept


def _scaled(fraction: float, sizes: Mapping[str, int], max_items: int | None) -> float:
    total_target = sum(_target(n, fraction) for n in sizes.values())
    if max_items is not None and total_target > max_items:
        return fraction * max_items / total_target
    return fraction


def _fill(items: list[SplitItem], needs: Mapping[str, int], seed: int) -> list[tuple[str, list[str]]]:
    """(rank, member keys) of the families taken: per slice, in rank order until its need is met."""
    families: dict[str, list[SplitItem]] = {}
    for item in items:
        families.setdefault(item.family, []).append(item)
    by_slice: dict[str, list[str]] = {}
    for family, members in families.items():
        by_slice.setdefault(members[0].slice, []).append(family)
    picked = []
    for slice_name, family_keys in sorted(by_slice.items()):
        need, taken = needs.get(slice_name, 0), 0
        for rank, family in sorted((_rank(seed, slice_name, f), f) for f in family_keys):
            if taken >= need:
                break
            picked.append((rank, [member.key for member in families[family]]))
            taken += len(families[family])
    return picked


def assign_train_val(items: Iterable[SplitItem], val_fraction: float, *, seed: int) -> dict[str, str]:
    """Key -> "train" or "val"."""
    items = list(items)
    val = stratified_pick(items, val_fraction, seed=seed + 1)
    return {item.key: "val" if item.key in val else "train" for item in items}


def _slice_sizes(items: list[SplitItem]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in items:
        sizes[item.slice] = sizes.get(item.slice, 0) + 1
    return sizes


def _target(size: int, fraction: float) -> int:
    target = round(size * fraction)
    return max(target, 1) if size >= MIN_SLICE_FOR_ONE and fraction > 0 else target


def _rank(seed: int, slice_name: str, family: str) -> str:
    return hashlib.sha256(f"{seed}\x00{slice_name}\x00{family}".encode()).hexdigest()
