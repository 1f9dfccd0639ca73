"""Generative (chat and tool-calling) students: tools shown by default for tool_call workloads, through
the chat template's `tools=` when it takes them; training rows cut from the left exactly as the served
student cuts its input; a base that cannot be loaded is one clear line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flywheel.cli import app
from flywheel.config import StudentConfig, WorkloadConfig
from flywheel.demo import generate_demo_traffic
from flywheel.records import Example
from flywheel.train import load_student, train_candidate
from flywheel.train.bases import BaseUnavailable
from flywheel.train.causal import token_rows
from flywheel.train.config import resolve_settings
from flywheel.train.fixtures import demo_examples
from flywheel.train.formatting import (
    prompt_budget,
    render_conversation,
    render_prompt,
    tool_rendering,
    tools_summary,
)
from flywheel.train.scratch import CHAT_TEMPLATE, train_tokenizer
from tests.train.conftest import tiny_student

PARAMETERS = {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}
TOOLS = [
    {"type": "function",
     "function": {"name": "get_order_details", "description": "Look an order up.", "parameters": PARAMETERS}},
]  # fmt: skip
# A scratch template that also renders `tools=` the way Hub chat templates do (a JSON schema per line).
TOOLS_TEMPLATE = (
    "{% if tools %}<|system|>You may call these functions:{% for tool in tools %}"
    "{{ '\\n' }}{{ tool | tojson }}{% endfor %}<|end|>{% endif %}" + CHAT_TEMPLATE
)


def conversation(turns: int) -> Example:
    messages = [{"role": "system", "content": "You are a retail agent. Authenticate the user first."}]
    for turn in range(turns):
        messages += [
            {"role": "user", "content": f"turn {turn}: where is my order #W{1000 + turn}?"},
            {"role": "assistant", "content": f"Order #W{1000 + turn} is pending."},
        ]
    messages.append({"role": "user", "content": "and order #W4242?"})
    call = {"id": "c1", "type": "function",
            "function": {"name": "get_order_details", "arguments": '{"order_id": "#W4242"}'}}  # fmt: skip
    target = {"role": "assistant", "content": None, "tool_calls": [call]}
    return Example("e1", "w", messages, target, tools=TOOLS)


@pytest.fixture(scope="module")
def tokenizer():
    example = conversation(3)
    texts = [m["content"] or "" for m in example.messages] + [tools_summary(TOOLS), '{"arguments":{}}']
    return train_tokenizer(texts * 20, 400)


def test_tools_go_through_the_chat_template_when_it_takes_them(tokenizer) -> None:
    example = conversation(1)
    assert tool_rendering(tokenizer, include_tools=False) is None
    assert tool_rendering(tokenizer, include_tools=True) == "plain"  # the scratch template has no tools
    plain = render_prompt(tokenizer, example, "plain")
    assert plain.startswith("<|system|>tools:\nget_order_details(order_id)<|end|>")
    tokenizer.chat_template = TOOLS_TEMPLATE
    try:
        assert tool_rendering(tokenizer, include_tools=True) == "template"
        rendered = render_prompt(tokenizer, example, "template")
        assert (
            rendered.startswith("<|system|>You may call these functions:\n{")
            and '"Look an order up."' in rendered
        )
        assert "tools:\n" not in rendered  # no second, plain copy
        assert render_conversation(tokenizer, example, "tool_call", "template").startswith(rendered)
    finally:
        tokenizer.chat_template = CHAT_TEMPLATE


def test_training_rows_keep_the_latest_turns_and_the_whole_answer(tokenizer) -> None:
    example = conversation(12)
    max_length, max_new = 128, 48  # the answer (~40 tokens here) fits max_new, as in training
    (row,), (length,) = token_rows(tokenizer, [example], "tool_call", "plain", max_length, max_new)
    assert length > max_length and len(row["input_ids"]) <= max_length
    answer = tokenizer('{"arguments":{"order_id":"#W4242"},"name":"get_order_details"}<|end|>',
                       add_special_tokens=False)["input_ids"]  # fmt: skip
    assert [t for t in row["labels"] if t != -100] == answer  # the answer survives, and only it is learned
    # The prompt part is what the served student feeds the model: the same text, cut from the left.
    prompt = render_prompt(tokenizer, example, "plain")
    tokenizer.truncation_side = "left"
    served = tokenizer(prompt, add_special_tokens=False, truncation=True,
                       max_length=prompt_budget(max_length, max_new))["input_ids"]  # fmt: skip
    assert row["input_ids"][: len(served)] == served and len(served) == len(row["input_ids"]) - len(answer)
    assert "and order #W4242?" in tokenizer.decode(served) and "turn 0:" not in tokenizer.decode(served)


def test_tools_are_shown_by_default_to_causal_students_of_tool_call_workloads() -> None:
    tools, chat = WorkloadConfig(id="t", task="tool_call"), WorkloadConfig(id="c", task="chat")
    assert resolve_settings(StudentConfig(name="s"), tools).options.include_tools is True
    assert resolve_settings(StudentConfig(name="s"), chat).options.include_tools is False
    off = StudentConfig(name="s", options={"include_tools": False})
    assert resolve_settings(off, tools).options.include_tools is False
    extractor = StudentConfig(name="x", kind="encoder-extractor")
    assert resolve_settings(extractor, tools).options.include_tools is False


CLI_CONFIG = """
workloads:
  - id: tool-assistant
    task: tool_call
    sources: [{path: demo-data/tool-assistant.jsonl, format: openai}]
    students:
      - {name: missing-dir, kind: causal-lm, base: /nonexistent/models/smollm2-135m}
      - {name: hub-id, kind: causal-lm, base: HuggingFaceTB/SmolLM2-135M-Instruct}
"""


def test_a_base_that_cannot_be_loaded_is_one_clear_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-hf-home"))  # nothing cached
    generate_demo_traffic(tmp_path / "demo-data", seed=5, size=60)
    (tmp_path / "flywheel.yaml").write_text(CLI_CONFIG)
    runner, base = CliRunner(), ["--config", str(tmp_path / "flywheel.yaml"), "--home", str(tmp_path / "h")]
    assert runner.invoke(app, [*base, "ingest", "--json"]).exit_code == 0
    assert runner.invoke(app, [*base, "curate", "-w", "tool-assistant", "--json"]).exit_code == 0
    for student, where, why in (
        ("missing-dir", "/nonexistent/models/smollm2-135m", "no such directory"),
        ("hub-id", "HuggingFaceTB/SmolLM2-135M-Instruct", "HF_HUB_OFFLINE=1"),
    ):
        result = runner.invoke(app, [*base, "train", "-w", "tool-assistant", "-c", student, "--json"])
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert result.exit_code == 1 and len(lines) == 1, result.output
        error = json.loads(lines[0])["error"]
        assert "\n" not in error and f"student {student!r}: base {where!r} cannot be loaded" in error
        assert why in error and "local directory" in error and "base:" in error
        assert "Traceback" not in result.output
    with pytest.raises(BaseUnavailable, match="is not a saved model directory"):
        train_candidate(StudentConfig(name="empty", kind="causal-lm", base=str(tmp_path)),
                        WorkloadConfig(id="w", task="chat"), [conversation(1)], [],
                        out_dir=tmp_path / "m", snapshot_id=None, warehouse=None)  # fmt: skip


@pytest.mark.slow
def test_a_tool_call_student_trains_and_serves_with_the_template_tools(
    tmp_path: Path, demo_dir: Path
) -> None:
    """A causal-lm student from a local base whose template takes `tools=`: trained and served alike."""
    examples = demo_examples(demo_dir, "tool-assistant")[:40]
    workload = WorkloadConfig(id="tool-assistant", task="tool_call")
    common = {"out_dir": tmp_path, "snapshot_id": None, "warehouse": None}
    base = train_candidate(
        tiny_student("base", options={"val_examples": 0}), workload, examples[:16], [], **common
    )
    assert load_student(base.path).manifest["tools_rendering"] == "plain"  # scratch template: plain list
    (base.path / "chat_template.jinja").write_text(TOOLS_TEMPLATE)
    student_config = tiny_student("chat", kind="causal-lm", base=str(base.path), method="lora",
                                  options={"lora_r": 4, "val_examples": 2})  # fmt: skip
    trained = train_candidate(student_config, workload, examples[:16], examples[16:20], **common)
    student = load_student(trained.path)
    assert student.manifest["include_tools"] is True and student.manifest["tools_rendering"] == "template"
    prompt = student.prompt_text(examples[20])
    assert prompt == render_prompt(student.tokenizer, examples[20], "template")
    assert prompt.startswith("<|system|>You may call these functions:") and "tools:\n" not in prompt
    assert len(student.predict(examples[20:22])) == 2
