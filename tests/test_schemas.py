"""flywheel/schemas.py: non-standard schemas normalized, what stays invalid named, never an exception."""

from __future__ import annotations

from typing import Any

import pytest

from flywheel.config import WorkloadConfig
from flywheel.schemas import (
    InvalidSchema,
    build_validator,
    json_types,
    normalize_request_schemas,
    normalize_schema,
    schema_problem,
)

BFCL_STYLE = {
    "type": "dict",
    "properties": {
        "base": {"type": "integer"},
        "ratio": {"type": "float", "default": 1.0},
        "point": {"type": "tuple", "items": {"type": "float"}},
        "anything": {"type": "any"},
        "type": {"type": "str"},  # a property *named* "type" is not a keyword
        "options": {
            "type": "dict",
            "properties": {"deep": {"type": "list", "items": {"type": "dict", "properties": {}}}},
        },
    },
    "required": ["base"],
}


def tool(name: str, parameters: Any) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


@pytest.mark.parametrize(
    ("name", "types"),
    [
        ("dict", ["object"]),
        ("Float", ["number"]),
        ("tuple", ["array"]),
        ("int", ["integer"]),
        ("str", ["string"]),
        ("bool", ["boolean"]),
        ("list", ["array"]),
        ("any", ["any"]),
        ("List[str]", ["array"]),
        ("typing.Dict[str, int]", ["object"]),
        ("Optional[int]", ["integer", "null"]),
        ("Union[str, List[int]]", ["string", "array"]),
        ("str | None", ["string", "null"]),
        ("string or number", ["string", "number"]),
        ("Union[str, Any]", ["any"]),
        ("widget", None),
        ("List[widget", None),
    ],
)
def test_type_names(name: str, types: list[str] | None) -> None:
    assert json_types(name) == types


def test_nested_bfcl_schema_becomes_valid_json_schema() -> None:
    schema, changes = normalize_schema(BFCL_STYLE)
    assert schema_problem(schema) is None
    props = schema["properties"]
    assert schema["type"] == "object" and props["ratio"] == {"type": "number", "default": 1.0}
    assert props["point"] == {"type": "array", "items": {"type": "number"}}
    assert props["anything"] == {} and props["type"] == {"type": "string"}
    assert props["options"]["properties"]["deep"]["items"]["type"] == "object"
    assert (
        "type: 'dict' -> 'object'" in changes
        and "properties.anything.type: 'any' -> no type constraint" in changes
    )
    assert BFCL_STYLE["type"] == "dict"  # the input is never modified
    assert build_validator(BFCL_STYLE).is_valid({"base": 1, "ratio": 0.5, "anything": [1]})
    assert not build_validator(BFCL_STYLE).is_valid({"base": "1"})


def test_standard_schema_comes_back_as_the_same_object() -> None:
    schema = {"type": "object", "properties": {"a": {"type": ["string", "null"]}}, "required": ["a"]}
    assert normalize_schema(schema) == (schema, []) and normalize_schema(schema)[0] is schema
    request = {"messages": [], "tools": [tool("f", schema)], "response_format": {"type": "json_object"}}
    assert normalize_request_schemas(request)[0] is request


def test_unions_combinators_draft3_required_and_parameter_lists() -> None:
    schema, _ = normalize_schema(
        {
            "type": "object",
            "properties": [{"name": "x", "type": "int", "required": True}, {"name": "y", "type": "str"}],
            "anyOf": [{"type": ["int", "float", "number"]}, {"not": {"type": "NoneType"}}],
            "$defs": {"d": {"type": "double"}},
            "additionalProperties": {"type": "bool"},
        }
    )
    assert schema_problem(schema) is None
    assert schema["properties"] == {"x": {"type": "integer"}, "y": {"type": "string"}}
    assert schema["required"] == ["x"]
    assert schema["anyOf"] == [{"type": ["integer", "number"]}, {"not": {"type": "null"}}]
    assert schema["$defs"]["d"] == {"type": "number"} and schema["additionalProperties"] == {
        "type": "boolean"
    }


def test_positional_items_follow_the_draft() -> None:
    modern, _ = normalize_schema({"type": "array", "items": [{"type": "int"}, {"type": "str"}]})
    assert modern["prefixItems"] == [{"type": "integer"}, {"type": "string"}] and "items" not in modern
    old = {"$schema": "http://json-schema.org/draft-07/schema#", "items": [{"type": "int"}]}
    assert normalize_schema(old)[0]["items"] == [{"type": "integer"}]
    assert schema_problem(normalize_schema(old)[0]) is None


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "widget"}, "type: 'widget' is not valid"),
        ({"properties": {"a": {"type": "gadget"}}}, "properties.a.type:"),
        ({"required": "a"}, "required: 'a' is not of type 'array'"),
        ({"type": "string", "pattern": "(["}, "pattern:"),
        ({"$ref": "#/definitions/missing"}, "$ref '#/definitions/missing' does not resolve"),
        ({"items": {"$ref": "https://example.com/s.json"}}, "items: $ref"),
        (["not", "a", "schema"], "a schema must be an object, got list"),
    ],
)
def test_what_stays_invalid_is_named(schema: Any, expected: str) -> None:
    fixed, _ = normalize_schema(schema)
    problem = schema_problem(fixed)
    assert problem is not None and expected in problem
    validator = build_validator(schema)
    assert isinstance(validator, str) and expected in validator


def test_resolvable_refs_and_anchors_are_fine() -> None:
    schema = {"properties": {"a": {"$ref": "#/$defs/x"}, "b": {"$ref": "#n"}}, "$defs": {"x": {"type": "int"},
              "y": {"$anchor": "n"}}}  # fmt: skip
    fixed, _ = normalize_schema(schema)
    assert schema_problem(fixed) is None and build_validator(schema).is_valid({"a": 1})


def test_request_schemas_name_the_tool_and_record_changes() -> None:
    request = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [tool("ok", {"type": "object"}), tool("calc", BFCL_STYLE)],
        "functions": [{"name": "legacy", "parameters": {"type": "dict"}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "float"}}},
    }
    fixed, changes = normalize_request_schemas(request)
    assert fixed["tools"][1]["function"]["parameters"]["type"] == "object"
    assert fixed["functions"][0]["parameters"] == {"type": "object"}
    assert fixed["response_format"]["json_schema"]["schema"] == {"type": "number"}
    assert "tools[1] (calc).parameters.type: 'dict' -> 'object'" in changes
    assert request["tools"][1]["function"]["parameters"]["type"] == "dict"  # input untouched
    bad = {**request, "tools": [tool("ok", {}), tool("broken", {"properties": {"q": {"type": "widget"}}})]}
    with pytest.raises(InvalidSchema) as caught:
        normalize_request_schemas(bad)
    assert caught.value.reason == "invalid_tool_schema"
    assert str(caught.value).startswith("tools[1] (broken) parameters: properties.q.type:")
    bad_format = {**request, "response_format": {"json_schema": {"schema": {"required": 3}}}}
    with pytest.raises(InvalidSchema, match=r"^response_format\.json_schema\.schema: required"):
        normalize_request_schemas(bad_format)


def test_tools_without_schemas_and_odd_entries_are_left_alone() -> None:
    request = {"tools": [None, 3, {"type": "web_search"}, tool("f", None), {"function": "x"}]}
    assert normalize_request_schemas(request) == (request, [])


def test_nesting_too_deep_is_a_reason_not_a_crash() -> None:
    schema: dict[str, Any] = {"type": "int"}
    for _ in range(3000):
        schema = {"items": schema}
    with pytest.raises(InvalidSchema) as caught:
        normalize_request_schemas({"response_format": {"json_schema": {"schema": schema}}})
    assert caught.value.reason == "unserializable"


def test_answer_checks_normalize_and_never_raise_on_a_schema() -> None:
    from flywheel.answers.parse import read_extraction, read_tool_calls
    from flywheel.evaluate.answers import answer_from_label

    bfcl = {"type": "dict", "properties": {"x": {"type": "float"}}, "required": ["x"]}
    assert read_extraction('{"x": 1.5}', bfcl).reason is None
    assert read_extraction('{"x": "a"}', bfcl).reason == "schema_violation"
    unusable = read_extraction('{"x": 1}', {"type": "widget"})
    assert unusable.reason == "schema_violation" and unusable.detail.startswith(
        "<schema>: unusable schema: type:"
    )
    call = [{"function": {"name": "f", "arguments": '{"x": 2}'}}]
    assert read_tool_calls(call, {"f": bfcl}).reason is None
    failed = read_tool_calls(call, {"f": {"properties": {"x": {"type": "gadget"}}}})
    assert (
        failed.reason == "invalid_arguments"
        and "f: <schema>: unusable schema: properties.x.type" in failed.detail
    )
    workload = WorkloadConfig(id="x", task="extraction", json_schema={"type": "widget"})
    assert not answer_from_label('{"x": 1}', workload).valid
    assert answer_from_label('{"x": 1}', workload.model_copy(update={"json_schema": bfcl})).valid
