from collections import Counter

import pytest

from flywheel.quality.debias import UNKNOWN, CapItem, apply_caps, cap_targets, distribution


def test_distribution_stats() -> None:
    dist = distribution(["a", "a", "b", "c"], known=["a", "b", "c", "d"])
    assert dist.counts == {"a": 2, "b": 1, "c": 1, "d": 0}
    assert dist.max_share == 0.5
    assert dist.entropy == pytest.approx(1.5)
    assert dist.as_dict()["slices"] == 3


def test_cap_targets_water_fill_the_share() -> None:
    targets = cap_targets({"big": 700, "mid": 200, "small": 100}, max_share=0.5)
    assert targets == {"big": 300, "mid": 200, "small": 100}
    assert targets["big"] <= 0.5 * sum(targets.values())
    # Two groups cannot both stay under 30%: an infeasible cap is skipped, not applied to death.
    assert cap_targets({"a": 10, "b": 10}, max_share=0.3) == {"a": 10, "b": 10}
    assert cap_targets({"a": 50, "b": 5}, max_share=None, max_count=20) == {"a": 20, "b": 5}


def items(spec: dict[tuple[str, str], int]) -> list[CapItem]:
    out = []
    for (slice_name, client), n in spec.items():
        out += [CapItem(f"{slice_name}-{client}-{i}", slice_name, client) for i in range(n)]
    return out


def test_caps_bound_slices_and_clients_and_are_deterministic() -> None:
    pool = items({("billing", "acme"): 300, ("billing", "globex"): 100, ("refund", "acme"): 150,
                  ("refund", "globex"): 50, ("returns", "initech"): 100, ("complaint", "initech"): 30,
                  ("shipping", "hooli"): 120, ("other", "wonka"): 150})  # fmt: skip
    removed = apply_caps(
        pool, seed=1, max_slice_share=0.3, max_per_slice=None, max_client_share=0.4, floor=20
    )
    kept = [item for item in pool if item.key not in removed]
    slices, clients = Counter(i.slice for i in kept), Counter(i.client for i in kept)
    assert max(slices.values()) <= 0.3 * len(kept) + 1
    assert max(clients.values()) <= 0.4 * len(kept) + 1
    assert set(removed.values()) <= {"slice_cap", "client_cap"}
    assert slices["complaint"] == 30, "a rare slice is spared"
    assert removed == apply_caps(pool, seed=1, max_slice_share=0.3, max_per_slice=None,
                                 max_client_share=0.4, floor=20)  # fmt: skip


def test_slice_cap_is_stratified_by_client() -> None:
    pool = items({("billing", "acme"): 600, ("billing", "globex"): 200, ("refund", "acme"): 100,
                  ("refund", "globex"): 100})  # fmt: skip
    removed = apply_caps(pool, seed=3, max_slice_share=None, max_per_slice=400, max_client_share=None)
    kept = Counter(i.client for i in pool if i.slice == "billing" and i.key not in removed)
    assert kept == {"acme": 300, "globex": 100}, "each client gives up rows in proportion"


def test_unknown_clients_are_never_capped() -> None:
    pool = items({("a", UNKNOWN): 500, ("b", UNKNOWN): 500, ("c", "x"): 10})
    removed = apply_caps(pool, seed=1, max_slice_share=None, max_per_slice=None, max_client_share=0.1)
    assert removed == {}
