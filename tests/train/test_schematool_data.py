"""The schema-tool student's plain-Python parts: reading schemas, locating and coercing values."""

from __future__ import annotations

from flywheel.records import Example
from flywheel.train.schematool.data import (
    ABSENT,
    SPAN,
    TRUE,
    closest_option,
    coerce_value,
    context_text,
    function_text,
    locate_value,
    offered_functions,
    param_types,
    question,
)
from flywheel.train.schematool.fit import training_items

TOOLS = [
    {"type": "function", "function": {
        "name": "calculate_triangle_area", "description": "Area of a triangle.",
        "parameters": {"type": "dict", "required": ["base", "height"], "properties": {
            "base": {"type": "integer", "description": "The base."},
            "height": {"type": "integer", "description": "The height."},
            "unit": {"type": "string", "description": "Unit", "enum": ["units", "cm"]},
            "exact": {"type": "boolean", "description": "Exact result"},
        }},
    }},
    {"type": "function", "function": {"name": "broken", "parameters": "not a schema"}},
    {"type": "function", "function": {"description": "no name"}},
]  # fmt: skip


def test_offered_functions_read_odd_schemas_without_failing() -> None:
    functions = offered_functions(TOOLS)
    assert [f.name for f in functions] == ["calculate_triangle_area", "broken"]
    assert functions[0].required == ("base", "height") and functions[1].properties == {}
    assert param_types({"type": "float"}) == ["number"] and param_types({"type": "tuple"}) == ["array"]
    assert param_types({"type": "no-such-type"}) == ["string"]
    assert "calculate triangle area" in function_text(functions[0])
    assert "options: units | cm" in question("unit", functions[0].properties["unit"])


def test_values_are_located_and_coerced_by_type() -> None:
    context = "user: Find the area with a base of 10,000 units and height of five; rate 7%"
    assert context[slice(*locate_value(context, 10000))] == "10,000"
    assert context[slice(*locate_value(context, 5))] == "five"
    assert context[slice(*locate_value(context, 0.07))] == "7%"
    assert locate_value(context, "UNITS") is not None and locate_value(context, "miles") is None
    assert coerce_value("10,000", {"type": "integer"}) == 10000
    assert coerce_value("5%", {"type": "float"}) == 0.05
    assert coerce_value("[1, 2 and 3]", {"type": "array", "items": {"type": "integer"}}) == [1, 2, 3]
    assert coerce_value("in Celsius", {"type": "string", "enum": ["fahrenheit", "celsius"]}) == "celsius"
    assert coerce_value("nothing numeric", {"type": "integer"}) is None
    assert closest_option("Units", ["units", "cm"]) == "units"


def test_training_items_from_a_call_and_a_text_reply() -> None:
    arguments = '{"base": 10, "height": 5, "exact": true}'
    function = {"name": "calculate_triangle_area", "arguments": arguments}
    tool_calls = [{"id": "c", "type": "function", "function": function}]
    call = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    messages = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "base 10, height 5"}]
    examples = [
        Example("a", "w", messages, call, tools=TOOLS),
        Example("b", "w", messages, {"role": "assistant", "content": "hello"}, tools=TOOLS),
        Example("c", "w", messages, call, tools=None),  # no tools offered: nothing to learn
    ]
    choosers, fills = training_items(examples)
    assert [c.target for c in choosers] == ["calculate_triangle_area", None]
    assert "be nice" not in choosers[0].context and context_text(messages) == "user: base 10, height 5"
    modes = {f.question.split(" (")[0]: (f.mode, f.span) for f in fills}
    assert modes["base"] == (SPAN, (11, 13)) and modes["height"][0] == SPAN
    assert modes["unit"] == (ABSENT, None) and modes["exact"] == (TRUE, None)
    # a located value is ranked against the other numbers the text writes ("5" for base's "10")
    rivals = {f.question.split(" (")[0]: f.rivals for f in fills}
    context = context_text(messages)
    assert [context[a:b] for a, b in rivals["base"]] == ["5"]
    assert [context[a:b] for a, b in rivals["height"]] == ["10"]


def test_chooser_groups_are_capped_and_keep_the_right_function() -> None:
    import random

    from flywheel.train.kinds.schema_tool import SchemaToolOptions
    from flywheel.train.schematool.data import Function
    from flywheel.train.schematool.fit import ChooserItem, chooser_group

    offered = tuple(Function(f"tool_{i}", f"does {i}", {}, ()) for i in range(16))
    pool = [*offered, *(Function(f"other_{i}", "", {}, ()) for i in range(5))]
    options = SchemaToolOptions(max_options=5, text_option_rate=0.0)
    rng = random.Random(0)
    for _ in range(20):
        texts, index = chooser_group(ChooserItem("user: hi", offered, "tool_7"), pool, options, rng)
        assert len(texts) == 5 and texts[index].startswith("tool 7.")
    texts, index = chooser_group(ChooserItem("user: hi", offered, None), pool, options, rng)
    assert index == 0 and len(texts) == 5


def test_word_bounds_keep_words_whole() -> None:
    from flywheel.train.schematool.student import word_bounds

    context = "user: raise 3 to the power 4 in mitochondria"
    assert context[slice(*word_bounds(context, 32, 41))] == "mitochondria"
