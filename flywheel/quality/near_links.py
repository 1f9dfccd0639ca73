"""Near-duplicate components without enumerating every candidate pair.

A family of k near-identical texts shares its LSH buckets, so listing every candidate pair costs k²:
templated traffic at a million records proposes billions of pairs. Grouping needs only the connected
components of the merged pairs, so candidates are checked with a union-find: a pair whose two texts
are already in one component is skipped (checking it cannot change any component), and texts with
different numbers are never paired (they never merge). The components are exactly those of the
closure over every candidate pair; what changes is the work: about one exact Jaccard per text that
joins a family, instead of one per pair of members.

Bands are compared through a 64-bit hash of each band's rows (the same buckets as the rows themselves
unless two different bands collide in 64 bits), which keeps the per-text state at 8 bytes a band.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

CALIBRATION_MARGIN = 0.1  # pairs within this of the threshold are shown as calibration
_MIX = np.uint64(0x9E3779B97F4A7C15)


@dataclass(slots=True)
class Linker:
    """Union-find over `n` texts; `links` counts the merges that joined two components."""

    n: int
    parent: list[int] = field(default_factory=list)
    links: int = 0
    window: list[tuple[float, int, int, bool]] = field(default_factory=list)  # (score, a, b, merged)

    def __post_init__(self) -> None:
        if not self.parent:
            self.parent = list(range(self.n))

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the earliest text is the root: deterministic

    def roots(self) -> np.ndarray:
        return np.fromiter((self.find(i) for i in range(self.n)), dtype=np.int64, count=self.n)


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64: each band's `rows` signature values folded into one 64-bit key."""
    keys = np.zeros((len(signatures), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for r in range(rows):
            column = signatures[:, r::rows][:, :bands].astype(np.uint64)
            keys = (keys ^ column) * _MIX  # multiply-xor per value: order matters, as in the band
            keys ^= keys >> np.uint64(29)
    return keys


def link_candidates(
    linker: Linker,
    keys: np.ndarray,
    shingles_of: Callable[[int], frozenset[int]],
    digits: list[tuple[str, ...]],
    threshold: float,
    is_new: np.ndarray | None = None,
) -> None:
    """Union every candidate pair (sharing a band key, same numbers) with rounded Jaccard >= threshold.

    With `is_new`, only pairs with at least one new text are checked: the components among known texts
    are already in `linker` (loaded from the index). Pairs within CALIBRATION_MARGIN of the threshold
    that were checked are kept in `linker.window`."""
    n = len(keys)
    checked: set[int] = set()
    codes = _codes(digits)
    index = np.arange(n)
    for band in range(keys.shape[1]):
        column = keys[:, band]
        order = np.lexsort((index, codes, column))  # buckets split by numbers, members in input order
        ordered, numbers = column[order], codes[order]
        starts = np.flatnonzero(
            np.concatenate([[True], (ordered[1:] != ordered[:-1]) | (numbers[1:] != numbers[:-1])])
        )
        ends = np.append(starts[1:], n)
        shared = ends - starts > 1
        starts, ends = starts[shared], ends[shared]
        if is_new is not None and len(starts):
            seen = np.concatenate([[0], np.cumsum(is_new[order])])  # new texts before each position
            fresh = seen[ends] - seen[starts] > 0
            starts, ends = starts[fresh], ends[fresh]
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            _link_bucket(linker, order[start:end].tolist(), shingles_of, threshold, checked, is_new)


def _codes(digits: list[tuple[str, ...]]) -> np.ndarray:
    """One int per distinct tuple of numbers (texts with other numbers never merge)."""
    seen: dict[tuple[str, ...], int] = {}
    return np.fromiter((seen.setdefault(d, len(seen)) for d in digits), dtype=np.int64, count=len(digits))


def _link_bucket(
    linker: Linker,
    part: list[int],
    shingles_of: Callable[[int], frozenset[int]],
    threshold: float,
    checked: set[int],
    is_new: np.ndarray | None,
) -> None:
    """Check one bucket's (same numbers) pairs across components, two components at a time, until one
    pair of them merges: every cross pair is looked at unless its components are already joined."""
    find = linker.find
    components: dict[int, list[int]] = {}
    for member in part:
        components.setdefault(find(member), []).append(member)
    if len(components) == 1:
        return  # one family already: nothing here can change a component
    families = list(components.values())
    for x in range(1, len(families)):
        for y in range(x):
            left, right = families[y], families[x]
            if find(left[0]) == find(right[0]):
                continue
            if is_new is not None and not (is_new[left].any() or is_new[right].any()):
                continue  # two known families: their pairs were checked when they were new
            _link_families(linker, left, right, shingles_of, threshold, checked, is_new)


def _link_families(
    linker: Linker,
    left: list[int],
    right: list[int],
    shingles_of: Callable[[int], frozenset[int]],
    threshold: float,
    checked: set[int],
    is_new: np.ndarray | None,
) -> None:
    n = linker.n
    for a in left:
        for b in right:
            i, j = (a, b) if a < b else (b, a)
            if is_new is not None and not (is_new[i] or is_new[j]):
                continue
            code = i * n + j
            if code in checked:
                continue
            checked.add(code)
            first, second = shingles_of(i), shingles_of(j)
            inter = len(first & second)
            score = round(inter / (len(first) + len(second) - inter), 4)
            merged = score >= threshold
            if abs(score - threshold) <= CALIBRATION_MARGIN:
                linker.window.append((score, i, j, merged))
            if merged:
                linker.union(i, j)
                linker.links += 1
                return


def nearest(window: list[tuple[float, int, int, bool]], threshold: float, limit: int) -> list:
    """The `limit` checked pairs closest to the threshold, either side (ties by position)."""
    return sorted(window, key=lambda p: (abs(p[0] - threshold), p[1], p[2]))[:limit]
