"""The bi-encoder chooser: what it reads of a multi-turn agent conversation, and that the real MiniLM
with its head learns to pick functions and "reply in text", then answers the same after save/load."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from flywheel.records import Example
from flywheel.train.kinds.schema_tool import SchemaToolOptions
from flywheel.train.schematool.chooser import (
    FunctionCache,
    bi_chooser_loss,
    choose_bi,
    chooser_text,
    is_error,
)
from flywheel.train.schematool.data import offered_functions
from flywheel.train.schematool.fit import training_items


def call(name: str, arguments: dict, call_id: str) -> dict:
    function = {"name": name, "arguments": orjson.dumps(arguments).decode()}
    return {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function",
                                                                  "function": function}]}  # fmt: skip


def tool(text: str, call_id: str) -> dict:
    return {"role": "tool", "tool_call_id": call_id, "content": text}


AGENT = [
    {"role": "system", "content": "POLICY " * 500},
    {"role": "user", "content": "I want to return order #W123, my email is a@b.com"},
    call("find_user_id_by_email", {"email": "a@b.com"}, "c1"),
    tool("anna_1", "c1"),
    call("get_order_details", {"order_id": "#W123"}, "c2"),
    tool(orjson.dumps({"order_id": "#W123", "items": ["x" * 50] * 40}).decode(), "c2"),
    call("get_order_details", {"order_id": "#W999"}, "c3"),
    tool("Error: order not found", "c3"),
]


def test_chooser_text_drops_the_policy_clips_results_and_ends_with_the_state() -> None:
    text = chooser_text(AGENT, clip=80)
    lines = text.splitlines()
    assert "POLICY" not in text and lines[0].startswith("user: I want to return")
    assert lines[1] == 'assistant: calls find_user_id_by_email({"email":"a@b.com"})'
    assert lines[2] == "tool: find_user_id_by_email result: anna_1"
    assert len(lines[4]) <= len("tool: get_order_details result: ") + 80  # a long result is clipped
    assert lines[6] == "tool: get_order_details error: Error: order not found"
    state = lines[-1]
    assert state.startswith("state: last message from tool (get order details error) | called: ")
    assert "called: find user id by email, get order details, get order details" in state
    assert state.endswith("latest user request: I want to return order #W123, my email is a@b.com")
    # the user spoke last: no repeat of the request, nothing called yet
    assert chooser_text(AGENT[:2]).splitlines()[-1] == "state: last message from user | called: nothing yet"
    state = chooser_text([*AGENT[:4], {"role": "assistant", "content": "Done."}]).splitlines()[-1]
    assert state.startswith("state: last message from assistant | last tool result ok | called: find user")


def test_tool_errors_are_recognised_in_text_and_json() -> None:
    assert is_error("Error: order not found") and is_error('{"error": "no such user"}')
    assert not is_error('{"error": null, "status": "ok"}') and not is_error("anna_1")
    assert not is_error("{not json")


def tools(*names: str) -> list[dict]:
    parameters = {"type": "object", "properties": {"query": {"type": "string"}}}
    return [{"type": "function", "function": {
        "name": n, "description": f"{n.replace('_', ' ')} for the customer", "parameters": parameters,
    }} for n in names]  # fmt: skip


TOOLS = tools("get_weather", "convert_currency", "book_flight")
TRAIN = [
    ("what is the weather in Paris today", "get_weather"),
    ("will it rain in Oslo tomorrow", "get_weather"),
    ("how many euros is 50 dollars", "convert_currency"),
    ("convert 20 pounds to yen", "convert_currency"),
    ("book me a flight to Rome on Friday", "book_flight"),
    ("I need a plane ticket to Lima", "book_flight"),
    ("thanks, that is all", None),
    ("hello there, who are you", None),
]


def example(n: int, text: str, name: str | None) -> Example:
    messages = [{"role": "system", "content": "policy"}, {"role": "user", "content": text}]
    target = call(name, {"query": text}, "c") if name else {"role": "assistant", "content": "Hi!"}
    return Example(f"e{n}", "w", messages, target, tools=TOOLS)


@pytest.mark.slow
def test_bi_chooser_learns_and_answers_the_same_after_save_and_load(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from flywheel.train.encoder import resolve_encoder_base
    from flywheel.train.schematool.model import HEADS, load_base, load_saved

    torch.manual_seed(0)
    model, tokenizer = load_base(resolve_encoder_base(None))
    choosers, _ = training_items([example(n, t, f) for n, (t, f) in enumerate(TRAIN)], chooser_text)
    assert choosers[0].context.endswith("state: last message from user | called: nothing yet")
    options = SchemaToolOptions(chooser="bi", chooser_max_length=64, text_option_rate=0.0, negatives=0)
    for layer in model.encoder.encoder.layer[:4]:  # as fit does (train_layers): a cheaper backward
        layer.requires_grad_(False)
    model.encoder.get_input_embeddings().weight.requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-4)
    rng, pool, losses = random.Random(0), list(offered_functions(TOOLS)), []
    model.train()
    for _ in range(12):
        loss, tokens = bi_chooser_loss(model, tokenizer, choosers, pool, options, rng)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(float(loss.detach()))
    assert tokens > 0 and losses[-1] < losses[0] / 3, losses
    model.eval()
    offered, cache = offered_functions(TOOLS), FunctionCache()
    with torch.inference_mode():
        picks = [choose_bi(model, tokenizer, example(0, t, f).messages, offered, cache, 64) for t, f in TRAIN]
    names = [offered[best - 1].name if best else None for best, _, _ in picks]
    assert names == [f for _, f in TRAIN]
    assert len(cache.vectors) == 3  # each function encoded once for all eight requests

    model.save_pretrained(str(tmp_path))
    tokenizer.save_pretrained(str(tmp_path))
    loaded, loaded_tokenizer = load_saved(tmp_path)
    with torch.inference_mode():
        again = [choose_bi(loaded, loaded_tokenizer, example(0, t, f).messages, offered, FunctionCache(), 64)
                 for t, f in TRAIN]  # fmt: skip
    assert [a[0] for a in again] == [p[0] for p in picks]
    assert [a[1] for a in again] == pytest.approx([p[1] for p in picks], abs=1e-5)

    # a bundle saved before the bi head existed still loads (its cross-encoder heads only)
    from safetensors.torch import load_file, save_file

    heads = load_file(str(tmp_path / HEADS))
    save_file({k: v for k, v in heads.items() if not k.startswith("bi.")}, str(tmp_path / HEADS))
    old, _ = load_saved(tmp_path)
    assert torch.equal(old.chooser.weight, loaded.chooser.weight)
