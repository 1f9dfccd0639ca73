from collections import Counter, defaultdict

from flywheel.datasets.splits import SplitItem, assign_train_val, stratified_pick, top_up_pick


def make_items() -> list[SplitItem]:
    items = []
    for slice_name, n in (("big", 500), ("mid", 120), ("rare", 6), ("tiny", 2)):
        for i in range(n):
            family = f"{slice_name}-fam{i // 3}" if slice_name == "big" else f"{slice_name}-{i}"
            items.append(SplitItem(f"{slice_name}-{i}", slice_name, family))
    return items


def test_eval_is_stratified_by_slice_and_keeps_families_whole() -> None:
    items = make_items()
    picked = stratified_pick(items, 0.1, seed=7)
    per_slice = Counter(item.slice for item in items if item.key in picked)
    assert 48 <= per_slice["big"] <= 52
    assert per_slice["mid"] == 12
    assert per_slice["rare"] == 1, "a slice with enough members gives one to eval"
    assert per_slice["tiny"] == 0
    families = defaultdict(set)
    for item in items:
        families[item.family].add(item.key in picked)
    assert all(len(sides) == 1 for sides in families.values()), "no family is split"


def test_picks_are_deterministic_seeded_and_bounded() -> None:
    items = make_items()
    assert stratified_pick(items, 0.1, seed=7) == stratified_pick(list(reversed(items)), 0.1, seed=7)
    assert stratified_pick(items, 0.1, seed=7) != stratified_pick(items, 0.1, seed=8)
    assert len(stratified_pick(items, 0.5, seed=7, max_items=40)) <= 45
    assert stratified_pick(items, 0.0, seed=7) == set()


def test_train_val_assignment_covers_everything() -> None:
    items = make_items()
    splits = assign_train_val(items, 0.2, seed=1)
    assert set(splits) == {item.key for item in items}
    assert 0.17 < Counter(splits.values())["val"] / len(items) < 0.23


def test_top_up_with_nothing_held_is_the_stratified_pick() -> None:
    items = make_items()
    sizes = Counter(item.slice for item in items)
    assert top_up_pick(items, sizes, {}, 0.1, seed=7) == stratified_pick(items, 0.1, seed=7)


def test_top_up_fills_each_slice_to_its_share_from_new_items_only() -> None:
    old = [
        SplitItem(f"old-{s}-{i}", s, f"old-{s}-{i}") for s, n in (("a", 100), ("b", 100)) for i in range(n)
    ]
    new = [SplitItem(f"new-{s}-{i}", s, f"new-{s}-{i}") for s, n in (("a", 100), ("b", 20)) for i in range(n)]
    sizes = Counter(item.slice for item in old + new)  # a: 200, b: 120
    held = {"a": 10, "b": 12}  # b already holds its 10% share
    picked = top_up_pick(new, sizes, held, 0.1, seed=3)
    assert picked <= {item.key for item in new}
    per_slice = Counter(key.split("-")[1] for key in picked)
    assert per_slice == {"a": 10}, "a gets 20 - 10 held; b is already at its share"


def test_top_up_keeps_families_whole_and_stays_within_the_bound() -> None:
    new = [SplitItem(f"n{i}", "a" if i % 2 else "b", f"fam{i // 4}") for i in range(400)]
    sizes = {"a": 400, "b": 400}
    picked = top_up_pick(new, sizes, {"a": 30, "b": 30}, 0.2, seed=1, max_items=100)
    assert len(picked) + 60 <= 100
    families = defaultdict(set)
    for item in new:
        families[item.family].add(item.key in picked)
    assert all(len(sides) == 1 for sides in families.values())
    assert top_up_pick(new, sizes, {"a": 70, "b": 70}, 0.2, seed=1, max_items=100) == set()
