"""De-bias: slice distributions, caps on over-represented slices and clients, rare-slice flags.

Caps are computed by water-filling (no slice may exceed `max_share` of what remains after capping,
nor `max_count`). Rows are then removed by stratified sampling: a capped slice gives up rows from each
client in proportion to that client's rows in it, and a capped client gives up rows from each slice in
proportion, so capping one dimension keeps the other's mix. Rare slices and small clients (at most
`floor` rows) are spared while the rest can cover the cut. Within a stratum, the rows to drop are
chosen by a seeded hash, so the same inputs and seed drop the same rows.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

UNKNOWN = "unknown"


@dataclass(slots=True)
class Distribution:
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def max_share(self) -> float:
        return max(self.counts.values()) / self.total if self.total else 0.0

    @property
    def entropy(self) -> float:
        """Shannon entropy in bits of the share distribution."""
        total = self.total
        return -sum(n / total * math.log2(n / total) for n in self.counts.values() if n) if total else 0.0

    def share(self, key: str) -> float:
        return self.counts.get(key, 0) / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, object]:
        present = sum(1 for n in self.counts.values() if n)
        return {
            "n": self.total,
            "slices": present,
            "max_share": round(self.max_share, 4),
            "entropy_bits": round(self.entropy, 4),
            "normalized_entropy": round(self.entropy / math.log2(present), 4) if present > 1 else 1.0,
            "counts": dict(sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        }


def distribution(values: Iterable[str], known: Iterable[str] = ()) -> Distribution:
    """Counts per value; `known` values (the label set, the tool names) appear even with count 0."""
    counts: Counter[str] = Counter({key: 0 for key in known})
    counts.update(values)
    return Distribution(dict(counts))


def cap_targets(
    counts: dict[str, int],
    *,
    max_share: float | None,
    max_count: int | None = None,
    floor: int = 0,
    exempt: Iterable[str] = (),
    minimum: dict[str, int] | None = None,
) -> dict[str, int]:
    """Largest per-group counts such that no group exceeds `max_share` of the capped total.

    Groups in `exempt` (unknown clients) count towards the total but are never capped. A share cap
    that cannot be met (fewer groups than 1/max_share) is skipped; no group is cut below `floor`, nor
    below its `minimum` (the rows that keep a slice at its production share).
    """
    exempt = set(exempt)
    minimum = minimum or {}
    targets = dict(counts)
    cappable = [key for key in targets if key not in exempt and targets[key] > 0]

    def lowest(key: str) -> int:
        return min(counts[key], max(floor, minimum.get(key, 0)))

    if max_count is not None:
        for key in cappable:
            targets[key] = min(targets[key], max(max_count, lowest(key)))
    if max_share is None or len([k for k, n in targets.items() if n > 0]) * max_share < 1:
        return targets
    for _ in range(200):
        limit = math.floor(max_share * sum(targets.values()))
        over = [key for key in cappable if targets[key] > max(limit, lowest(key))]
        if not over:
            break
        for key in over:
            targets[key] = max(limit, lowest(key))
    return targets


@dataclass(slots=True)
class CapItem:
    key: str
    slice: str
    client: str


def apply_caps(
    items: list[CapItem],
    *,
    seed: int,
    max_slice_share: float | None,
    max_per_slice: int | None,
    max_client_share: float | None,
    floor: int = 0,
    slice_minimum: dict[str, int] | None = None,
) -> dict[str, str]:
    """Key -> removal reason ("slice_cap" or "client_cap") for the items the caps drop; no slice
    cap cuts a slice below its `slice_minimum`."""
    removed: dict[str, str] = {}
    for _ in range(5):
        alive = [item for item in items if item.key not in removed]
        slice_counts = Counter(item.slice for item in alive)
        targets = cap_targets(
            dict(slice_counts),
            max_share=max_slice_share,
            max_count=max_per_slice,
            floor=floor,
            minimum=slice_minimum,
        )
        dropped = _trim(alive, "slice", "client", targets, seed, floor)
        removed.update(dict.fromkeys(dropped, "slice_cap"))
        alive = [item for item in alive if item.key not in removed]
        client_counts = Counter(item.client for item in alive)
        known = [c for c in client_counts if c != UNKNOWN]
        if len(known) > 1:
            targets = cap_targets(dict(client_counts), max_share=max_client_share, exempt=[UNKNOWN])
            more = _trim(alive, "client", "slice", targets, seed, floor)
            removed.update(dict.fromkeys(more, "client_cap"))
            dropped = dropped + more
        if not dropped:
            break
    return removed


def _trim(
    items: list[CapItem], group_by: str, balance_by: str, targets: dict[str, int], seed: int, protect: int
) -> list[str]:
    """Drop items from groups over their target, stratified by `balance_by` (largest remainder).

    Values of `balance_by` with at most `protect` items overall (rare slices, small clients) give up
    nothing while the rest of the group can cover the excess.
    """
    groups: dict[str, dict[str, list[CapItem]]] = {}
    balance = Counter(getattr(item, balance_by) for item in items)
    for item in items:
        groups.setdefault(getattr(item, group_by), {}).setdefault(getattr(item, balance_by), []).append(item)
    dropped: list[str] = []
    for group, by_other in sorted(groups.items()):
        excess = sum(len(v) for v in by_other.values()) - targets.get(group, 0)
        if excess <= 0:
            continue
        eligible = {other: members for other, members in by_other.items() if balance[other] > protect}
        if sum(len(members) for members in eligible.values()) < excess:
            eligible = by_other
        quotas = _largest_remainder(excess, {other: len(members) for other, members in eligible.items()})
        for other, quota in quotas.items():
            members = sorted(eligible[other], key=lambda item: _rank(seed, item.key))
            dropped.extend(item.key for item in members[len(members) - quota :])
            balance[other] -= quota
    return dropped


def _largest_remainder(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split `total` in proportion to `weights` (integers summing to `total`, ties by name)."""
    weight_sum = sum(weights.values())
    if not weight_sum or total <= 0:
        return {}
    exact = {key: total * weight / weight_sum for key, weight in weights.items()}
    quotas = {key: int(value) for key, value in exact.items()}
    leftover = total - sum(quotas.values())
    for key in sorted(exact, key=lambda k: (-(exact[k] - quotas[k]), k))[:leftover]:
        quotas[key] += 1
    return {key: n for key, n in quotas.items() if n}


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).hexdigest()


def production_minimum(production: dict[str, int], pool_size: int) -> dict[str, int]:
    """Rows per slice that keep each slice at (at least) its share of the production traffic."""
    total = sum(production.values())
    return {key: math.ceil(n / total * pool_size) for key, n in production.items()} if total else {}


def below_production_share(
    production: dict[str, int], after: Distribution, tolerance: float = 0.02
) -> dict[str, dict[str, float | int]]:
    """Slices whose share of the curated pool fell below their share of the traffic (by > tolerance)."""
    total = sum(production.values())
    out: dict[str, dict[str, float | int]] = {}
    for key, n in sorted(production.items()):
        share = n / total if total else 0.0
        if after.share(key) < share - tolerance:
            out[key] = {"production_share": round(share, 4), "share_after": round(after.share(key), 4),
                        "n_after": after.counts.get(key, 0)}  # fmt: skip
    return out


def rare_slices(counts: dict[str, int], min_count: int) -> list[str]:
    return sorted(key for key, n in counts.items() if n < min_count)
