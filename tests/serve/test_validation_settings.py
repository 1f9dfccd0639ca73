from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.answers import AnswerSpec
from flywheel.bundle import Bundle, BundlePredictor
from flywheel.config import ConfigError, FlywheelConfig, WorkloadConfig, load_config
from flywheel.config.serve import ServeConfig
from flywheel.records import Example, Prediction
from flywheel.serve.resolve import resolve_workload
from flywheel.serve.settings import build_settings, spool_dir
from tests.serve.conftest import LABELS, ORDER_SCHEMA, TOOLS, WORKLOADS

SUPPORT, ORDERS, ASSISTANT, CHAT = (WorkloadConfig(**w) for w in WORKLOADS)


def invalid_reason(workload: WorkloadConfig, message: dict, request: dict) -> str | None:
    """What serving decides about a student's answer: its bundle predictor's finishing step."""
    predictor = BundlePredictor(Bundle(workload.id, AnswerSpec.of(workload)), student=None, name="s")  # type: ignore[arg-type]
    example = Example("e", workload.id, request.get("messages", []), {}, request=request)
    return predictor.finish(Prediction(message, 0.9), example).invalid_reason


def text(content: str) -> dict:
    return {"role": "assistant", "content": content}


def call(name: str, arguments: str = '{"order_id": "O-1"}') -> dict:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"function": {"name": name, "arguments": arguments}}],
    }


@pytest.mark.parametrize(
    ("workload", "message", "request_extra", "reason"),
    [
        (SUPPORT, text("billing"), {}, None),
        (SUPPORT, text("upgrade"), {}, "label_not_in_set"),
        (SUPPORT, text("  "), {}, "empty_answer"),
        (ORDERS, text('{"order_id": "O-1"}'), {}, None),
        (ORDERS, text('{"order_id": 1}'), {}, "schema_violation"),
        (ORDERS, text("order O-1"), {}, "invalid_json"),
        (ASSISTANT, call("get_order_status"), {"tools": TOOLS}, None),
        (ASSISTANT, call("get_order_status", "{nope"), {"tools": TOOLS}, "unparseable_arguments"),
        (ASSISTANT, call("get_order_status", '{"id": 1}'), {"tools": TOOLS}, "invalid_arguments"),
        (ASSISTANT, call("refund_everything"), {"tools": TOOLS}, "unknown_tool"),
        (ASSISTANT, call("get_order_status"), {}, "tools_not_offered"),
        (ASSISTANT, text("Happy to help!"), {"tools": TOOLS}, None),
        (CHAT, text("hello"), {}, None),
    ],
)
def test_invalid_reason_per_task(workload, message, request_extra, reason) -> None:
    request = {"model": workload.id, "messages": [{"role": "user", "content": "x"}], **request_extra}
    assert invalid_reason(workload, message, request) == reason


def test_request_schema_is_used_when_the_workload_has_none() -> None:
    free = WorkloadConfig(id="free", task="extraction")
    request = {
        "response_format": {"type": "json_schema", "json_schema": {"name": "o", "schema": ORDER_SCHEMA}}
    }
    assert invalid_reason(free, text('{"order_id": 3}'), request) == "schema_violation"
    assert invalid_reason(free, text('{"order_id": "3"}'), request) is None


def test_serve_section_in_flywheel_yaml(tmp_path: Path) -> None:
    path = tmp_path / "flywheel.yaml"
    path.write_text(
        "workloads:\n"
        "  - {id: support, task: classification, labels: [billing, refund, shipping]}\n"
        "serve:\n"
        "  shadow_rate: 0.1\n"
        "  thresholds: {support: 0.7}\n"
        "  aliases: {gpt-4o-mini: support}\n"
        "  spool_dir: captures\n"
    )
    config = load_config(path)
    settings = build_settings(config, environ={"FLYWHEEL_API_KEYS": "a,b"})
    assert settings.threshold("support") == 0.7
    assert resolve_workload(settings, {}, {"model": "gpt-4o-mini"}) == "support"
    assert settings.api_keys == {"a", "b"} and settings.student_usd_per_hour == 0.10
    assert spool_dir(settings.serve, tmp_path) == tmp_path / "captures"
    assert build_settings(FlywheelConfig(), environ={}).serve == ServeConfig()


def test_serve_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "flywheel.yaml"
    path.write_text("serve:\n  shadow_rat: 0.1\n")
    with pytest.raises(ConfigError, match=r"flywheel.yaml:2: serve.shadow_rat"):
        load_config(path)
    config = FlywheelConfig(workloads=[{"id": "s", "task": "classification", "labels": LABELS}])
    with pytest.raises(ConfigError, match=r"serve\.aliases\.x: unknown workload 'nope'"):
        build_settings(config, ServeConfig(aliases={"x": "nope"}), environ={})
    with pytest.raises(ConfigError, match=r"serve\.student_hardware"):
        build_settings(config, ServeConfig(student_hardware="abacus"), environ={})
    with pytest.raises(ValueError, match="within"):
        ServeConfig(thresholds={"s": 1.5})
