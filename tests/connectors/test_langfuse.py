from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors import SourceError
from flywheel.records import Interaction, Rejected
from tests.connectors.factories import WEATHER_TOOL, completion, read, write_jsonl


def generation(**overrides: object) -> dict:
    obs = {
        "id": "obs-1",
        "traceId": "trace-1",
        "type": "GENERATION",
        "name": "weather-call",
        "startTime": "2024-05-06T12:00:00.000Z",
        "endTime": "2024-05-06T12:00:01.250Z",
        "completionStartTime": "2024-05-06T12:00:00.400Z",
        "model": "gpt-4o-mini",
        "modelParameters": {"temperature": 0.2, "max_tokens": 256},
        "input": {
            "messages": [{"role": "user", "content": "Weather in Paris?"}],
            "tools": [WEATHER_TOOL],
        },
        "output": {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                }
            ],
        },
        "usageDetails": {"input": 31, "output": 9, "total": 40},
        "calculatedTotalCost": 0.00042,
        "level": "DEFAULT",
        "metadata": {"workload_id": "weather", "env": "prod"},
        "userId": "user-7",
    }
    obs.update(overrides)
    return obs


def span(**overrides: object) -> dict:
    return {
        "id": "span-1",
        "traceId": "trace-1",
        "type": "SPAN",
        "name": "retrieve",
        "input": "q",
        **overrides,
    }


def test_json_array_yields_generations_only(tmp_path: Path) -> None:
    path = tmp_path / "observations.json"
    path.write_bytes(
        orjson.dumps([span(), generation(), {"type": "EVENT", "id": "e"}, generation(id="obs-2")])
    )
    items = read("langfuse", path, workload_id=None)
    assert [i.source_ref for i in items] == [f"{path}:#1", f"{path}:#3"]
    item = items[0]
    assert isinstance(item, Interaction)
    assert (item.workload_id, item.client_id, item.model, item.source) == (
        "weather",
        "user-7",
        "gpt-4o-mini",
        "langfuse",
    )
    assert item.request["messages"] == [{"role": "user", "content": "Weather in Paris?"}]
    assert item.request["tools"] == [WEATHER_TOOL]
    assert (item.request["temperature"], item.request["max_tokens"]) == (0.2, 256)
    call = item.response["message"]["tool_calls"][0]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert item.response["finish_reason"] == "tool_calls"
    assert (item.prompt_tokens, item.completion_tokens, item.cost_usd) == (31, 9, 0.00042)
    assert item.ts == datetime(2024, 5, 6, 12, 0, 0)
    assert item.latency_ms == pytest.approx(1250)
    assert item.metadata["ttft_ms"] == pytest.approx(400)
    assert item.metadata["langfuse_trace_id"] == "trace-1"
    assert item.metadata["langfuse_observation_id"] == "obs-1"
    assert item.metadata["env"] == "prod"


def test_string_input_and_output_and_legacy_usage(tmp_path: Path) -> None:
    obs = generation(
        input="Say hi", output="Hi!", usageDetails=None, usage={"promptTokens": 3, "completionTokens": 2}
    )
    path = tmp_path / "o.json"
    path.write_bytes(orjson.dumps([obs]))
    (item,) = read("langfuse", path)
    assert item.request["messages"] == [{"role": "user", "content": "Say hi"}]
    assert item.response == {"message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}
    assert (item.prompt_tokens, item.completion_tokens) == (3, 2)


def test_message_list_input_and_chat_completion_output(tmp_path: Path) -> None:
    obs = generation(input=[{"role": "user", "content": "x"}], output=completion("y"), usageDetails=None)
    path = write_jsonl(tmp_path / "o.jsonl", [obs])
    (item,) = read("langfuse", path)
    assert item.response["message"]["content"] == "y"
    assert (item.prompt_tokens, item.completion_tokens) == (20, 5)  # from the completion's usage


def test_error_level_is_an_error_interaction(tmp_path: Path) -> None:
    obs = generation(level="ERROR", statusMessage="upstream timeout", output=None)
    (item,) = read("langfuse", write_jsonl(tmp_path / "o.jsonl", [obs]))
    assert item.status == "error"
    assert item.response == {"error": {"message": "upstream timeout"}}


def test_jsonl_rejections_and_skips(tmp_path: Path) -> None:
    lines = [
        span(),
        generation(),
        b'{"type": "GENERATION", "inp',
        [1, 2],
        {"id": "no-type"},
        generation(metadata={}),
        span(),
    ]
    path = write_jsonl(tmp_path / "o.jsonl", lines)
    items = read("langfuse", path, workload_id=None)
    assert [(getattr(i, "reason", "ok"), i.source_ref) for i in items] == [
        ("ok", f"{path}:2"),
        ("truncated_json", f"{path}:3"),
        ("not_an_object", f"{path}:4"),
        ("wrong_schema", f"{path}:5"),
        ("missing_workload_id", f"{path}:6"),
    ]


def test_gzip_jsonl_and_gzip_array(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "o.jsonl.gz", [span(), generation()], gz=True)
    assert [i.source_ref for i in read("langfuse", path)] == [f"{path}:2"]
    array = tmp_path / "o.json.gz"
    array.write_bytes(gzip.compress(orjson.dumps([generation(), span()])))
    assert [i.source_ref for i in read("langfuse", array)] == [f"{array}:#0"]


def test_api_list_response_and_broken_array(tmp_path: Path) -> None:
    path = tmp_path / "api.json"
    path.write_bytes(
        orjson.dumps({"data": [generation(), span()], "meta": {"page": 1}}, option=orjson.OPT_INDENT_2)
    )
    assert len(read("langfuse", path)) == 1
    broken = tmp_path / "broken.json"
    broken.write_bytes(orjson.dumps([generation()])[:-5])
    with pytest.raises(SourceError, match="not a valid JSON array"):
        read("langfuse", broken)


def test_parquet_export_with_json_text_columns(tmp_path: Path) -> None:
    rows = [span(), generation(), generation(id="obs-3", input=None)]
    columns = {key: [_cell(row.get(key)) for row in rows] for key in generation()}
    path = tmp_path / "obs.parquet"
    pq.write_table(pa.table(columns), path, row_group_size=2)
    items = read("langfuse", path)
    assert [i.source_ref for i in items] == [f"{path}:row 2", f"{path}:row 3"]
    good, bad = items
    assert isinstance(good, Interaction) and isinstance(bad, Rejected)
    assert good.request["tools"] == [WEATHER_TOOL]
    assert good.response["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert good.metadata["env"] == "prod" and good.workload_id == "weather"
    assert bad.reason == "bad_request"


def test_unreadable_parquet_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(SourceError, match="Parquet"):
        read("langfuse", path)


def _cell(value: object) -> str | float | None:
    """Langfuse's Parquet export keeps nested fields as JSON text."""
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return value  # type: ignore[return-value]
