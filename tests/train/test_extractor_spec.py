"""The encoder-extractor's output space: which values are spans or choices, and rebuilding JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from flywheel.records import Example
from flywheel.train.extractor_spec import (
    ExtractorSpec,
    Leaf,
    answer_object,
    coerce,
    leaves,
    locate,
    occurrences,
    rebuild,
)


def example(text: str, answer: Any, task: str = "extraction") -> Example:
    if task == "extraction":
        target = {"role": "assistant", "content": orjson.dumps(answer).decode()}
    elif "name" in answer:
        call = {"name": answer["name"], "arguments": orjson.dumps(answer["arguments"]).decode()}
        target = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"type": "function", "function": call}],
        }
    else:
        target = {"role": "assistant", "content": answer["content"]}
    return Example("e", "w", [{"role": "user", "content": text}], target)


ORDERS = [
    ("Jan Novak here. Send 3 x SKU-20031 and 1 x SKU-77812 to Brno.",
     {"name": "Jan Novak", "city": "Brno", "kind": "new",
      "items": [{"sku": "SKU-20031", "qty": 3}, {"sku": "SKU-77812", "qty": 1}]}),
    ("Please deliver SKU-10358 x6 to Lyon, thanks.",
     {"name": None, "city": "Lyon", "kind": "new", "items": [{"sku": "SKU-10358", "qty": 6}]}),
    ("Where is ORD-111111? Call 312.555.0180",
     {"name": None, "city": None, "kind": "status", "items": []}),
    ("Cancel it please, Ana Lima", {"name": "Ana Lima", "city": None, "kind": "status", "items": []}),
]  # fmt: skip


def test_numbers_match_whole_digit_runs_and_strings_fall_back_to_any_case() -> None:
    text = "SKU-19178 (qty 1), phone 312.555.0180, SKU-10358 x6"
    assert [text[s:e] for s, e in occurrences(text, 1)] == ["1"]
    assert occurrences(text, 5) == [] and len(occurrences(text, 6)) == 1
    assert occurrences("ship to BRNO", "Brno") == [(8, 12)]
    assert occurrences("anything", True) == []


def test_locate_picks_the_occurrence_next_to_its_object() -> None:
    text = "2 x SKU-1111 and 1 x SKU-2222 and 2 x SKU-3333"
    items = leaves({"items": [{"sku": "SKU-1111", "q": 2}, {"sku": "SKU-3333", "q": 2}]})
    spans, missing = locate(text, items)
    assert not missing
    by_value = sorted((text[s.start : s.end], s.start) for s in spans)
    assert by_value == [("2", 0), ("2", 34), ("SKU-1111", 4), ("SKU-3333", 38)]
    _, missing = locate(text, [Leaf(("city",), "Oslo", ())])
    assert [leaf.value for leaf in missing] == ["Oslo"]


def test_spec_splits_span_paths_from_choices() -> None:
    spec = ExtractorSpec.build([example(t, a) for t, a in ORDERS], "extraction")
    assert ["items", "[]", "sku"] in spec.span_paths and ["name"] in spec.span_paths
    assert spec.groups == [{"path": ["kind"], "values": ['"new"', '"status"']}]
    assert spec.types["items.[].qty"] == "int"
    assert spec.required_in_items == {"items.[]": ["qty", "sku"]}
    assert {d["path"][0]: d["empty"] for d in spec.defaults} == {
        "name": None, "city": None, "kind": None, "items": []
    }  # fmt: skip
    assert spec.coverage == 1.0
    rare = ExtractorSpec.build([example(t, a) for t, a in ORDERS[:3]], "extraction")
    assert rare.groups == [{"path": ["kind"], "values": ['"new"']}]  # "status" was seen once
    assert rare.coverage == pytest.approx(2 / 3, abs=1e-3)


def test_rebuild_groups_list_elements_in_reading_order_and_fills_defaults() -> None:
    spec = ExtractorSpec.build([example(t, a) for t, a in ORDERS], "extraction")
    facts = [
        (("kind",), "new", -1),
        (("items", "[]", "qty"), 3, 10),
        (("items", "[]", "sku"), "SKU-1", 14),
        (("items", "[]", "qty"), 1, 30),
        (("items", "[]", "sku"), "SKU-2", 34),
        (("items", "[]", "sku"), "SKU-9", 50),  # no quantity: a half-read item is dropped
        (("city",), "Brno", 60),
        (("city",), "Lyon", 70),  # a scalar read twice: the first reading stands
    ]
    assert rebuild(spec, facts) == {
        "kind": "new",
        "items": [{"qty": 3, "sku": "SKU-1"}, {"qty": 1, "sku": "SKU-2"}],
        "city": "Brno",
        "name": None,
    }
    assert rebuild(spec, []) == {"name": None, "city": None, "kind": None, "items": []}


def test_tool_call_answers_and_canned_replies() -> None:
    status = [{"name": "status", "arguments": {"order_id": ref}} for ref in ("ORD-123456", "ORD-654321")]
    examples = [
        example("where is ORD-123456", status[0], "tool_call"),
        example("track ORD-654321", status[1], "tool_call"),
        example("thanks!", {"content": "You're welcome!"}, "tool_call"),
        example("thank you", {"content": "You're welcome!"}, "tool_call"),
    ]
    assert answer_object(examples[0], "tool_call") == {
        "name": "status",
        "arguments": {"order_id": "ORD-123456"},
    }
    spec = ExtractorSpec.build(examples, "tool_call")
    assert spec.span_paths == [["arguments", "order_id"]]
    paths = {tuple(g["path"]): g["values"] for g in spec.groups}
    assert paths == {("content",): ['"You\'re welcome!"'], ("name",): ['"status"']}
    assert spec.args_by_name == {"status": ["order_id"]}
    with pytest.raises(ValueError, match="extraction and tool_call"):
        answer_object(examples[0], "classification")


def test_coerce_reads_the_teachers_type() -> None:
    assert coerce("x6", "int") == 6 and coerce("qty 2.5", "float") == 2.5
    assert coerce("six", "int") is None and coerce("  Brno ", "str") == "Brno"
    assert coerce("yes", "bool") is True
    assert ExtractorSpec.from_dict(ExtractorSpec(task="extraction").as_dict()) == ExtractorSpec("extraction")
