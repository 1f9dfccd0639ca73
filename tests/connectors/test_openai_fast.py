"""The fast path for OpenAI lines (connectors/openai_fast.py) stores exactly what the general path
stores: the same content ids (pinned to the values earlier releases wrote, so re-ingesting an old
file adds nothing), the same columns, the same rejections, for plain, tool-call, streamed, error and
malformed lines alike."""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import REGISTRY, ReadContext
from connectors.openai_fast import fast_row
from connectors.openai_jsonl import NAME, _from_document, item_from_line
from flywheel.ingest.columns import ChunkBuilder, ParsedChunk
from flywheel.pricing import PriceCatalog
from flywheel.records import Interaction
from tests.connectors.factories import chat_request, completion, error_body, stream_chunks, tool_call

# Lines and the ids the code before the fast path gave them (workload "support").
PINNED = {
    b'{"request":{"model":"gpt-4o-mini","temperature":0.2,"messages":[{"role":"system","content":'
    b'"Route the ticket."},{"role":"user","content":"Where is my parcel? \xc3\xa9"}]},"response":{"id":'
    b'"c1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"shipping"},"finish_reason":"stop"}],"usage":{'
    b'"prompt_tokens":20,"completion_tokens":1}},"timestamp":1700000000,"client_id":"c1"}': (
        "7cffaa2736efdb04a79eff4db69fab4a794eb88155132dad3e03d67de33d7881"
    ),
    b'{"request":{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Weather in Paris?"}],'
    b'"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object",'
    b'"properties":{"city":{"type":"string"}}}}}],"tool_choice":"auto"},"response":{"model":'
    b'"gpt-4o-mini","created":1700000001,"choices":[{"message":{"role":"assistant","content":null,'
    b'"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":'
    b'{"city":"Paris"}}}]},"finish_reason":"tool_calls"}]}}': (
        "8363f7bf3bb8d1e98a802ca3e847fefba906fc6738c9630ec41ce004c9baf2d9"
    ),
    b'{"request":{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]},'
    b'"response":[{"object":"chat.completion.chunk","created":1700000002,"model":"gpt-4o-mini",'
    b'"choices":[{"delta":{"role":"assistant","content":"Hel"}}]},{"object":"chat.completion.chunk",'
    b'"choices":[{"delta":{"content":"lo"},"finish_reason":"stop"}]}]}': (
        "c5eb697400ea8925933bd3d0db02725f3ad7676347699b9d342f87633246c222"
    ),
    b'{"request":{"model":"gpt-4o-mini","response_format":{"type":"json_object"},"messages":[{"role":'
    b'"user","content":"JSON please"}]},"response":{"error":{"message":"Rate limit reached","type":'
    b'"requests","code":"rate_limit_exceeded"}},"timestamp":"2024-05-01T12:00:00Z"}': (
        "7bfb5de5f1853bd4b386bf44bac413b7a2d9f6a1a11551be41c122596b2d7bc8"
    ),
}
ODD = [None, 0, 1, -1, 2**63, 1.5, 1e300, "x", "", "é", "\u2028", [], {}, [1, {"b": 2}], {"z": 1}, True]
TIMESTAMPS = [1_700_000_000, 1_700_000_000.5, 1_700_000_000_123, "2024-01-02T03:04:05Z", "1700000000", 0, -5]
TIMESTAMPS += ["", None, True, "garbage", [1], 1e30, 10**11, 10**11 + 1]


def _chunk(items: list[Any]) -> ParsedChunk:
    builder = ChunkBuilder()
    for item in items:
        builder.add(item)
    return builder.build()


def _assert_same(fast: list[Any], general: list[Any]) -> None:
    got, want = _chunk(fast), _chunk(general)
    assert got.interactions.equals(want.interactions)
    assert got.quarantine.equals(want.quarantine)
    assert (got.repeated, got.reasons, got.read) == (want.repeated, want.reasons, want.read)


def test_content_ids_are_pinned(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_bytes(b"\n".join(PINNED) + b"\n")
    ctx = ReadContext(workload_id="support")
    rows = list(REGISTRY[NAME].items(path, ctx))
    general = list(REGISTRY[NAME].read(path, ctx))
    assert [row[0] if isinstance(row, tuple) else row.id for row in rows] == list(PINNED.values())
    assert [item.id for item in general] == list(PINNED.values())
    assert sum(isinstance(row, tuple) for row in rows) == 3  # the streamed line takes the general path


def _stream_with_tools() -> list[dict[str, Any]]:
    base = {"object": "chat.completion.chunk", "created": 1_700_000_001, "model": "m"}
    fragments = [
        {"index": 0, "id": "call_a", "function": {"name": "get_", "arguments": '{"ci'}},
        {"index": 0, "function": {"name": "weather", "arguments": 'ty": 1}'}},
        {"index": 1, "id": "call_b", "function": {"name": "f2", "arguments": {"obj": True}}},
    ]
    chunks = [{**base, "choices": [{"delta": {"tool_calls": [f]}}]} for f in fragments]
    usage = {"prompt_tokens": 5, "completion_tokens": 7}
    return [*chunks, {**base, "choices": [{"delta": {}, "finish_reason": "tool_calls"}], "usage": usage}]


def _record(rng: random.Random, i: int) -> dict[str, Any]:
    kind = rng.randrange(11)
    request = chat_request(f"prompt {i % 50} ü 漢字", tools=kind in (1, 2), temperature=rng.choice([0, 0.7]))
    response: Any = completion(f"answer {i % 7}")
    if kind == 1:
        response = completion(None, tool_calls=[tool_call()])
    elif kind == 2:
        response = completion(None, tool_calls=[tool_call({"city": "Paris"}), {"function": {"name": "g"}}])
    elif kind == 3:
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "x", "schema": {}}}
        response["choices"][0]["logprobs"] = {"content": [{"token": "x", "logprob": -0.5}]}
    elif kind == 4:
        request.update(stream=True, stream_options={"include_usage": True}, n=1, user="u-7")
        response = stream_chunks(f"streamed {i % 5}")
    elif kind == 5:
        response = _stream_with_tools()
    elif kind == 6:
        response = error_body()
    elif kind == 7:
        response["choices"][0]["message"]["refusal"] = "no"
        response["usage"] = {"input_tokens": 3, "output_tokens": "4"}
    elif kind == 8:
        response["choices"][0]["logprobs"] = rng.choice([{}, [], None, {"content": []}])
        response["model"] = rng.choice([None, "", "gpt-4o-mini-2024-07-18"])
        error = response if rng.random() < 0.5 else error_body()
        response = {
            **error,
            "usage": rng.choice([{"prompt_tokens": 9}, None]),
            "model": rng.choice([None, "m"]),
        }
    elif kind == 9:  # odd models and token counts: stored as no name / no count, not a crash
        response["model"] = rng.choice([[1], {"a": 1}, 7, "", None])
        request["model"] = rng.choice([["x"], 5, "", None, "gpt-4o"])
        counts = [2**31, 2**31 - 1, 2**40, -(2**31) - 1, 1e30, "12", 3.7, float("nan")]
        response["usage"] = {"prompt_tokens": rng.choice(counts), "completion_tokens": rng.choice(counts)}
    doc: dict[str, Any] = {"request": request, "response": response}
    key = rng.choice(["timestamp", "timestamp", "ts", "created_at", None])
    if key:
        doc[key] = rng.choice(TIMESTAMPS) if rng.random() < 0.4 else 1_700_000_000 + i
    for field, values in (
        ("client_id", ["c1", 7, None]),
        ("latency_ms", [12, 1.5, "3.5", None, "x", True]),
        ("cost_usd", [0.001, 0, "0.5", None, "free"]),
        ("feedback", ODD),
        ("metadata", [{"workload_id": "meta-wl", "client_id": "mc"}, {"k": [1, 2]}, "notadict", {}]),
        ("workload_id", ["other", 5, ""]),
    ):
        if rng.random() < 0.25:
            doc[field] = rng.choice(values)
    return doc


def _mutate(rng: random.Random, doc: dict[str, Any]) -> Any:
    """Replace or drop one value somewhere in the record (or the record itself)."""
    doc = copy.deepcopy(doc)
    path = rng.choice(
        [
            "request",
            "response",
            "request.messages",
            "request.messages.0",
            "request.messages.0.role",
            "request.tools",
            "response.choices",
            "response.choices.0",
            "response.choices.0.message",
            "response.choices.0.message.content",
            "response.choices.0.message.tool_calls",
            "response.usage",
            "response.error",
            "response.object",
        ]
    )
    *parents, last = path.split(".")
    target: Any = doc
    for part in parents:
        if isinstance(target, list) and target:
            target = target[0]
        elif isinstance(target, dict) and part in target:
            target = target[part]
        else:
            return doc
    if isinstance(target, list):
        target[:1] = [rng.choice(ODD)]
    elif isinstance(target, dict) and rng.random() < 0.3:
        target.pop(last, None)
    elif isinstance(target, dict):
        target[last] = rng.choice(ODD)
    return rng.choice(ODD) if rng.random() < 0.02 else doc


def _lines(seed: int, count: int) -> list[bytes]:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        doc = _record(rng, i)
        line = orjson.dumps(_mutate(rng, doc) if rng.random() < 0.3 else doc)
        roll = rng.random()
        if roll < 0.03:
            line = line[: rng.randrange(1, len(line))]
        elif roll < 0.05:
            line = line.replace(b"prompt", b"\xff\xfe", 1)
        lines.append(line)
        if rng.random() < 0.05:
            lines.append(rng.choice(lines))  # a duplicate
    # nesting orjson reads but cannot write back: in the request, in metadata
    deep, answer = b"[" * 300 + b"]" * 300, orjson.dumps(completion())
    messages = b'{"request":{"messages":[{"role":"user","content":"x"}]'
    too_deep = [messages + b',"x":' + deep + b'},"response":' + answer + b"}"]
    too_deep.append(messages + b'},"response":' + answer + b',"metadata":{"a":' + deep + b"}}")
    too_deep.append(messages + b'},"response":' + answer + b',"feedback":' + deep + b"}")
    return [*lines, *too_deep, b"[1, 2]", b"{bad"]


def test_fast_path_stores_what_the_general_path_stores(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    path.write_bytes(b"\n".join(_lines(seed=7, count=3000)) + b"\n")
    ctx = ReadContext(workload_id="wl", price_fn=PriceCatalog.load().cost)
    fast, general = list(REGISTRY[NAME].items(path, ctx)), list(REGISTRY[NAME].read(path, ctx))
    assert len(fast) == len(general)
    _assert_same(fast, general)
    taken = sum(isinstance(item, tuple) for item in fast)
    valid = sum(isinstance(item, Interaction) for item in general)
    assert taken > 0.6 * valid  # most valid lines really went through the fast path


def test_fast_path_matches_on_each_line_with_and_without_prices() -> None:
    for price_fn in (None, PriceCatalog.load().cost):
        ctx = ReadContext(workload_id="wl", price_fn=price_fn)
        for number, line in enumerate(_lines(seed=11, count=600), start=1):
            ref = f"logs.jsonl:{number}"
            row = fast_row(line, ref, ctx, NAME)
            item = item_from_line(ref, line, ctx, NAME, _from_document)
            if row is not None:
                assert isinstance(item, Interaction), (line, item)
                _assert_same([row], [item])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["timestamp", "ts", "created_at", "client_id", "latency_ms", "cost_usd", "metadata", "workload_id"]
FIELDS += ["feedback"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    envelope=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4),
    usage=st.dictionaries(
        st.sampled_from(["prompt_tokens", "completion_tokens", "input_tokens"]), json_values, max_size=3
    ),
    content=json_values,
    finish=json_values,
)
def test_fast_path_matches_for_arbitrary_field_values(
    envelope: dict[str, Any], usage: dict[str, Any], content: Any, finish: Any
) -> None:
    response = completion("x")
    response["usage"] = usage
    response["choices"][0]["message"]["content"] = content
    response["choices"][0]["finish_reason"] = finish
    try:
        line = orjson.dumps({"request": chat_request(), "response": response, **envelope})
    except TypeError:  # e.g. an integer orjson cannot write: not a line a log can hold
        return
    ctx = ReadContext(workload_id="wl", price_fn=PriceCatalog.load().cost)
    row = fast_row(line, "f:1", ctx, NAME)
    item = item_from_line("f:1", line, ctx, NAME, _from_document)
    if row is not None:
        assert isinstance(item, Interaction)
        assert _stored(row) == _stored(item)


def _stored(item: Any) -> Any:
    """The interactions table for one item, or the error storing it raises (on either path)."""
    try:
        return _chunk([item]).interactions.to_pylist()
    except (OverflowError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        return type(exc)
