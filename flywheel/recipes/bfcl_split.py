"""BFCL items as examples split by function, and BFCL's own "any acceptable value" check.

A split by function puts every item of a function on one side, so the test functions were never
seen in training: what a schema-reading student must generalize to. The acceptable-value check
follows BFCL's AST checker: each argument matches one of the possible answers (strings compared
without case, spaces and punctuation, an int accepted for a float), an argument whose possible
answers include "" may be left out, and no argument outside the possible answer may be given.
"""

from __future__ import annotations

import random
import re
from typing import Any

import orjson

from flywheel.recipes.bfcl import OMITTED, BfclItem, gold_calls, to_log
from flywheel.records import Example

STRIP_RE = re.compile(r"[ ,./\-_*^]")


def item_example(item: BfclItem, index: int, workload_id: str = "bfcl-simple") -> Example:
    """The item as a raw-request example: the student reads `request` through its bundle."""
    log = to_log(item, index)
    request = log["request"]
    label = orjson.dumps(gold_calls(item), option=orjson.OPT_SORT_KEYS).decode()
    return Example(
        example_id=item.id,
        workload_id=workload_id,
        messages=request["messages"],
        target=log["response"]["choices"][0]["message"],
        label=label,
        gold=label,
        slice=function_of(item),
        tools=request["tools"],
        request=request,
    )


def function_of(item: BfclItem) -> str:
    """The function the item's gold answer calls (the split key)."""
    names = [name for entry in item.ground_truth for name in entry]
    return names[0] if names else str((item.functions or [{}])[0].get("name"))


def split_by_function(
    items: list[BfclItem], test_share: float, seed: int
) -> tuple[list[BfclItem], list[BfclItem]]:
    """(train, test) with no function on both sides; the functions are shuffled with `seed`."""
    functions = sorted({function_of(i) for i in items})
    random.Random(seed).shuffle(functions)
    test_functions = set(functions[: round(len(functions) * test_share)])
    train = [i for i in items if function_of(i) not in test_functions]
    test = [i for i in items if function_of(i) in test_functions]
    return train, test


def acceptable(calls: list[dict[str, Any]], ground_truth: list[dict[str, Any]]) -> bool:
    """Do the predicted calls [{"name", "arguments"}] match BFCL's possible answer (same order)?"""
    expected = [(name, args) for entry in ground_truth for name, args in entry.items()]
    if len(calls) != len(expected):
        return False
    return all(
        call.get("name") == name and _arguments_ok(call.get("arguments") or {}, possible)
        for call, (name, possible) in zip(calls, expected, strict=True)
    )


def _arguments_ok(arguments: dict[str, Any], possible: dict[str, list[Any]]) -> bool:
    if any(key not in possible for key in arguments):
        return False
    for key, values in possible.items():
        if key not in arguments:
            if OMITTED not in values:
                return False
        elif not any(_same(arguments[key], v) for v in values if v != OMITTED):
            return False
    return True


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, dict):
        if not isinstance(value, dict) or set(value) - set(expected):
            return False
        return all(
            (k in value and any(_same(value[k], v) for v in options if v != OMITTED))
            or (k not in value and OMITTED in options)
            for k, options in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(value, list) and len(value) == len(expected) and all(map(_same, value, expected))
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(value) == float(expected)
    if isinstance(expected, str) and isinstance(value, str):
        return STRIP_RE.sub("", value).lower() == STRIP_RE.sub("", expected).lower()
    return False
