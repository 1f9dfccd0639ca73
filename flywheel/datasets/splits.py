"""Split assignment: stratified by slice, whole near-duplicate families at a time, seeded.

A family is every example that shares a `family` key (the dup group, or the example alone). A family
goes to exactly one split, so a near duplicate can never sit in train while its twin is in eval. In
each slice, families are taken in a seeded hash order until the slice's share of the split is met,
which keeps every slice represented in proportion (and rare slices get at least one example in a
split once they have enough members to spare one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
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
    """Keys of about `fraction` of the items, per slice, taking whole families; at most `max_items`."""
    items = list(items)
    if fraction <= 0 or not items:
        return set()
    total_target = sum(_target(n, fraction) for n in _slice_sizes(items).values())
    if max_items is not None and total_target > max_items:
        fraction *= max_items / total_target
    families: dict[str, list[SplitItem]] = {}
    for item in items:
        families.setdefault(item.family, []).append(item)
    by_slice: dict[str, list[str]] = {}
    for family, members in families.items():
        by_slice.setdefault(members[0].slice, []).append(family)
    picked: set[str] = set()
    for slice_name, family_keys in sorted(by_slice.items()):
        size = sum(len(families[f]) for f in family_keys)
        target = _target(size, fraction)
        taken = 0
        for family in sorted(family_keys, key=lambda f: _rank(seed, slice_name, f)):
            if taken >= target:
                break
            picked.update(member.key for member in families[family])
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
