from typing import Any

import orjson
import pytest

from flywheel.config import WorkloadConfig
from flywheel.config.curation import CurationConfig
from flywheel.quality.answers import parse_answer
from flywheel.quality.checks import RowView, first_failure, is_negative_feedback

CONFIG = CurationConfig()
TOOLS = [
    {"type": "function", "function": {"name": "get_order_status", "parameters": {
        "type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"],
        "additionalProperties": False}}},
]  # fmt: skip
SCHEMA = {
    "type": "object",
    "properties": {"order_id": {"type": ["string", "null"]}, "items": {"type": "array"}},
    "required": ["order_id", "items"],
    "additionalProperties": False,
}
ROUTER = WorkloadConfig(id="r", task="classification", labels=["billing", "refund"],
                        label_parser={"regex": r"^\s*([a-z_]+)\s*$"})  # fmt: skip
EXTRACT = WorkloadConfig(id="e", task="extraction", json_schema=SCHEMA)
TOOL = WorkloadConfig(id="t", task="tool_call", tools=TOOLS)


def message(content: str | None = None, calls: list[tuple[str, str]] | None = None, **extra: Any) -> dict:
    out: dict[str, Any] = {"role": "assistant", "content": content, **extra}
    if calls:
        out["tool_calls"] = [
            {"id": f"c{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(calls)
        ]
    return out


def verdict(workload: WorkloadConfig, msg: dict | None, *, status: str = "ok", finish: str = "stop",
            feedback: Any = None, tokens: int = 10, request: dict | None = None) -> str | None:  # fmt: skip
    response = (
        {"error": {"code": "rate_limit_exceeded"}}
        if status != "ok"
        else {"message": msg, "finish_reason": finish}
    )
    parsed = parse_answer(workload, msg, request or {"tools": TOOLS}) if status == "ok" else None
    result = first_failure(RowView(status, response, feedback, tokens, parsed), CONFIG)
    return result[0] if result else None


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"msg": None, "status": "error"}, "error_response"),
        ({"msg": message("bil"), "finish": "length"}, "truncated"),
        ({"msg": message("billing"), "finish": "content_filter"}, "content_filtered"),
        ({"msg": message(None, refusal="I can't do that")}, "refusal"),
        ({"msg": message("I'm sorry, but I can't help with that request.")}, "refusal"),
        ({"msg": message("  ")}, "empty_answer"),
        ({"msg": message("Billing")}, "unparseable_label"),
        ({"msg": message("tech_support")}, "label_not_in_set"),
        ({"msg": message("billing"), "feedback": {"rating": "down"}}, "negative_feedback"),
        ({"msg": message("billing"), "tokens": 0}, "input_too_short"),
        ({"msg": message("billing"), "tokens": 10_000}, "input_too_long"),
        ({"msg": message("billing")}, None),
    ],
)
def test_classification_row_checks(kwargs: dict, reason: str | None) -> None:
    assert verdict(ROUTER, **kwargs) == reason


def test_first_failing_reason_wins() -> None:
    # A truncated, down-voted, unparseable answer is "truncated": the most specific cause first.
    assert verdict(ROUTER, message("Bil"), finish="length", feedback={"rating": "down"}) == "truncated"
    assert verdict(ROUTER, message("Billing"), feedback=False) == "unparseable_label"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"order_id": null, "items": []}', None),
        ('```json\n{"order_id": null, "items": []}\n```', None),  # one contract: fences are stripped
        ('{"order_id": null, "items": [],}', "invalid_json"),
        ('{"order_id": null}', "schema_violation"),
        ('{"order_id": null, "items": [], "notes": "x"}', "schema_violation"),
        ('{"order_id": 7, "items": []}', "schema_violation"),
    ],
)
def test_extraction_answers_validate_against_the_schema(content: str, reason: str | None) -> None:
    assert verdict(EXTRACT, message(content)) == reason


def test_extraction_label_is_canonical_json() -> None:
    parsed = parse_answer(EXTRACT, message('{ "items": [], "order_id": "ORD-1" }'), {})
    assert parsed.label == '{"items":[],"order_id":"ORD-1"}'


def test_extraction_falls_back_to_the_request_schema() -> None:
    workload = WorkloadConfig(id="e2", task="extraction")
    request = {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}}
    assert parse_answer(workload, message('{"order_id": null}'), request).reason == "schema_violation"


@pytest.mark.parametrize(
    ("calls", "reason"),
    [
        ([("get_order_status", '{"order_id": "ORD-1"}')], None),
        ([("track_order", '{"order_id": "ORD-1"}')], "unknown_tool"),
        ([("get_order_status", '{"order_id": "ORD-1"')], "unparseable_arguments"),
        ([("get_order_status", '["ORD-1"]')], "unparseable_arguments"),
        ([("get_order_status", "{}")], "invalid_arguments"),
    ],
)
def test_tool_calls_must_name_known_tools_with_valid_arguments(calls: list, reason: str | None) -> None:
    assert verdict(TOOL, message(None, calls)) == reason


def test_tool_call_labels() -> None:
    parsed = parse_answer(
        TOOL, message(None, [("get_order_status", '{"order_id":"ORD-1"}')]), {"tools": TOOLS}
    )
    assert orjson.loads(parsed.label) == [{"name": "get_order_status", "arguments": {"order_id": "ORD-1"}}]
    assert parse_answer(TOOL, message("Hi! How can I help?"), {"tools": TOOLS}).label == "[]"


def test_json_path_label_parser() -> None:
    workload = WorkloadConfig(id="j", task="classification", labels=["a", "b"],
                              label_parser={"json_path": "$.intent", "lowercase": True})  # fmt: skip
    assert parse_answer(workload, message('{"intent": "A"}'), {}).label == "a"
    assert parse_answer(workload, message('{"other": 1}'), {}).reason == "unparseable_label"


@pytest.mark.parametrize(
    ("feedback", "negative"),
    [
        ({"rating": "down"}, True),
        ({"thumbs": "thumbs_down"}, True),
        ({"score": -1}, True),
        (False, True),
        ("negative", True),
        ({"rating": "up"}, False),
        ({"score": 4}, False),
        (None, False),
        ([{"rating": "up"}, {"rating": "down"}], True),
    ],
)
def test_negative_feedback_shapes(feedback: Any, negative: bool) -> None:
    assert is_negative_feedback(feedback) is negative


def test_refusal_patterns_do_not_flag_helpful_answers() -> None:
    for text in ("Sorry for the wait! Your order ORD-1 ships today.", "I can help with that: which order?"):
        assert verdict(WorkloadConfig(id="c", task="chat"), message(text)) is None


def test_a_student_served_answer_is_no_label_unless_a_person_corrected_it() -> None:
    from flywheel.config.curation import CurationConfig
    from flywheel.quality.checks import RowView, first_failure

    response = {"message": {"role": "assistant", "content": "billing"}, "finish_reason": "stop"}
    student = RowView("ok", response, None, 20, None, served_by="student")
    assert first_failure(student, CurationConfig())[0] == "student_answer"
    corrected = RowView("ok", response, None, 20, None, has_gold=True, served_by="student")
    fallback = RowView("ok", response, None, 20, None, served_by="teacher")
    assert (
        first_failure(corrected, CurationConfig()) is None
        and first_failure(fallback, CurationConfig()) is None
    )


def test_a_shadow_calls_teacher_answer_is_a_label_unless_the_workload_says_no() -> None:
    import orjson

    from flywheel.quality.rows import row_from_record, served_by

    teacher = {"message": {"role": "assistant", "content": "refund"}, "finish_reason": "stop"}
    student = {"message": {"role": "assistant", "content": "billing"}, "finish_reason": "stop"}
    record = {
        "id": "i1", "client_id": None, "source_ref": "spool:1", "batch_id": "b", "status": "ok", "ts": None,
        "request": orjson.dumps({"messages": [{"role": "user", "content": "money back"}]}),
        "response": orjson.dumps(student), "feedback": None, "prompt_tokens": 3, "completion_tokens": 1,
        "gold_label": None,
        "metadata": orjson.dumps({"served_by": "student", "teacher_response": teacher}),
    }  # fmt: skip
    row = row_from_record(record)
    assert row.response == teacher and served_by(row, shadow_labels=True) == "teacher"
    assert served_by(row, shadow_labels=False) == "student"  # then rejected as student_answer
    unshadowed = row_from_record(record | {"metadata": orjson.dumps({"served_by": "student"})})
    assert unshadowed.response == student and served_by(unshadowed, shadow_labels=True) == "student"
