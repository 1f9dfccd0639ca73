"""Inferring a workload's config from real logs: wrapping, label set, task type, `init --from`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.answers import AnswerSpec, read_message
from flywheel.cli import app
from flywheel.config import load_config
from flywheel.infer import detect_wrapping, guess_task, infer_labels
from flywheel.records import Interaction
from tests.conftest import write_jsonl

SYSTEM = (
    "You are a financial news analyst. Read the headline and tell which analyst rating action it reports. "
    "Answer with exactly one of: upgrade, downgrade, initiation, reiteration, target change, wrapped in "
    "four square brackets like [[[[upgrade]]]]. Do not explain."
)
ACTIONS = (
    ["downgrade"] * 12 + ["upgrade"] * 9 + ["initiation"] * 5 + ["target change"] * 3 + ["reiteration"] * 2
)


@pytest.mark.parametrize(
    ("answers", "wrapping", "expected"),
    [
        (["[[[[downgrade]]]]", "[[[[upgrade]]]]", "[[[[target change]]]]"], "brackets", "target change"),
        (['{"label": "billing"}', '{"label": "refund"}', '{"label": "billing"}'], "json", "refund"),
        (['"billing"', "'refund'", '"billing"'], "quotes", "refund"),
        (["Label: billing", "Label: refund.", "label: billing"], "prefix", "refund"),
        (["billing", "refund", "Billing"], "bare", "refund"),
    ],
)
def test_wrapping_is_detected_and_read_by_the_contract(
    answers: list[str], wrapping: str, expected: str
) -> None:
    inference = infer_labels(answers * 4)
    assert inference.wrapping == wrapping
    assert expected in inference.labels and inference.unreadable == 0
    assert inference.labels[expected] == 4
    spec = AnswerSpec("classification", tuple(inference.labels), inference.parser)
    assert read_message(spec, {"role": "assistant", "content": answers[1]}, None).valid


def test_labels_come_with_counts_and_rare_answers_are_set_apart() -> None:
    answers = [f"[[[[{a}]]]]" for a in ACTIONS] + ["[[[[I am not sure]]]]"]
    inference = infer_labels(answers)
    assert list(inference.labels.items())[:2] == [("downgrade", 12), ("upgrade", 9)]
    assert inference.outliers == {"I am not sure": 1}
    assert inference.parser is not None and detect_wrapping("[[[[upgrade]]]]")[0] == "brackets:[[[["


def call(i: int, answer: str | None = None, **request: object) -> Interaction:
    message = {"role": "assistant", "content": answer}
    return Interaction("w", {"messages": [{"role": "user", "content": f"q {i}"}], **request},
                       {"message": message}, "openai", f"f:{i}")  # fmt: skip


def test_task_type_guess_names_its_evidence() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert guess_task([call(i, "ok", tools=tools) for i in range(20)]).task == "tool_call"
    assert guess_task([call(i, "{}", response_format=schema) for i in range(20)]).task == "extraction"
    guess = guess_task([call(i, f"[[[[{a}]]]]") for i, a in enumerate(ACTIONS)])
    assert guess.task == "classification" and "5 distinct short answers" in guess.reason
    chat = guess_task(
        [call(i, f"Sure! Here is a long answer number {i} about your question.") for i in range(30)]
    )
    assert chat.task == "chat"


def record(i: int, headline: str, answer: str) -> dict:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Headline: {headline}"}]
    return {
        "request": {"model": "gpt-4o", "messages": messages},
        "response": {
            "choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]
        },
        "timestamp": 1_700_000_000 + i,
    }


def test_init_from_logs_writes_a_config_that_loads(tmp_path: Path) -> None:
    logs = write_jsonl(
        tmp_path / "analyst ratings.jsonl",
        [record(i, f"Bank {i} acts on Company {i}", f"[[[[{a}]]]]") for i, a in enumerate(ACTIONS)],
    )
    out = tmp_path / "cfg" / "flywheel.yaml"
    out.parent.mkdir()
    result = CliRunner().invoke(app, ["init", str(out), "--from", str(logs), "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    (found,) = payload["workloads"]
    assert found["workload_id"] == "analyst-ratings" and found["task"] == "classification"
    assert found["labels"]["labels"]["downgrade"] == 12 and found["template"]["n_static_tokens"] > 16
    config = load_config(out)
    workload = config.workload("analyst-ratings")
    assert workload.labels == ["downgrade", "upgrade", "initiation", "target change", "reiteration"]
    assert workload.label_parser is not None and workload.sources[0].format == "openai"
    assert workload.sources[0].path == "../analyst ratings.jsonl"
    # the student written is one that fits a classification workload and trains offline
    assert [(s.name, s.kind) for s in workload.students] == [("minilm", "encoder-classifier")]
    assert "labels with counts: downgrade=12" in out.read_text()
    again = CliRunner().invoke(app, ["init", str(out), "--from", str(logs), "--json"])
    assert again.exit_code == 1 and "exists" in again.stdout


def _tool_log(i: int, function: str) -> dict:
    tool = {
        "type": "function",
        "function": {
            "name": function,
            "description": f"does {function}",
            "parameters": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
        },
    }
    call = {
        "id": f"c{i}",
        "type": "function",
        "function": {"name": function, "arguments": json.dumps({"x": str(i)})},
    }
    return {
        "request": {"model": "gpt-4o-mini", "tools": [tool],
                    "messages": [{"role": "user", "content": f"please {function} item {i}"}]},
        "response": {"choices": [{"message": {"role": "assistant", "content": None, "tool_calls": [call]},
                                  "finish_reason": "tool_calls"}]},
    }  # fmt: skip


@pytest.mark.parametrize(("functions", "kind"), [(8, "encoder-extractor"), (40, "schema-tool")])
def test_init_picks_the_tool_student_by_whether_tools_vary(tmp_path: Path, functions: int, kind: str) -> None:
    """One fixed tool set: the extractor's closed set of names fits; a schema per request (BFCL-style):
    only the schema-aware student can call functions it never saw."""
    names = [f"fn_{i % functions}" for i in range(40)]
    tools = {name: [name] for name in names} if functions == 40 else None
    records = []
    for i, name in enumerate(names):
        log = _tool_log(i, name)
        if tools is None:  # every request offers the same 8 functions
            offered = [_tool_log(0, f"fn_{j}")["request"]["tools"][0] for j in range(8)]
            log["request"]["tools"] = offered
        records.append(log)
    logs = write_jsonl(tmp_path / "agent.jsonl", records)
    out = tmp_path / "flywheel.yaml"
    result = CliRunner().invoke(app, ["init", str(out), "--from", str(logs), "--json"])
    assert result.exit_code == 0, result.output
    workload = load_config(out).workloads[0]
    assert workload.task == "tool_call" and [s.kind for s in workload.students] == [kind]
