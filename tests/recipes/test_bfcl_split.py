"""BFCL items split by function, and BFCL's any-acceptable-value rule."""

from __future__ import annotations

from flywheel.recipes.bfcl import BfclItem
from flywheel.recipes.bfcl_split import acceptable, item_example, split_by_function


def _item(n: int, name: str) -> BfclItem:
    function = {"name": name, "parameters": {"type": "dict", "properties": {}}}
    return BfclItem(f"i{n}", [{"role": "user", "content": f"q{n}"}], [function], [{name: {}}])


def test_split_keeps_each_function_on_one_side() -> None:
    items = [_item(n, f"f{n % 7}") for n in range(40)]
    train, test = split_by_function(items, 0.3, seed=1)
    assert len(train) + len(test) == 40 and test
    assert not {i.functions[0]["name"] for i in train} & {i.functions[0]["name"] for i in test}
    assert split_by_function(items, 0.3, seed=1) == (train, test)
    example = item_example(items[0], 0)
    assert example.request["tools"][0]["function"]["name"] == "f0"
    assert example.gold == '[{"arguments":{},"name":"f0"}]'


def test_acceptable_follows_bfcl_rules() -> None:
    truth = [{"area": {"base": [10], "unit": ["units", ""], "city": ["New York", "NYC"], "xs": [[1, 2]]}}]
    good = {"base": 10.0, "city": "new-york", "xs": [1, 2]}
    assert acceptable([{"name": "area", "arguments": good}], truth)
    assert acceptable([{"name": "area", "arguments": good | {"unit": "units"}}], truth)
    assert not acceptable([{"name": "area", "arguments": good | {"unit": "cm"}}], truth)
    assert not acceptable([{"name": "area", "arguments": {"base": 10, "xs": [1, 2]}}], truth)  # city required
    assert not acceptable([{"name": "area", "arguments": good | {"extra": 1}}], truth)
    assert not acceptable([{"name": "other", "arguments": good}], truth)
    assert not acceptable([], truth)
