"""Request schemas at ingest: non-standard types normalized the same way on the fast and general
paths, ids kept where nothing changes, and a schema that stays invalid quarantined with a reason
that names the tool, without holding up the rest of the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import orjson

from connectors import REGISTRY, ReadContext
from connectors.openai_jsonl import NAME
from flywheel.ingest import ingest_paths
from flywheel.ingest.columns import ChunkBuilder, ParsedChunk
from flywheel.schemas import SCHEMA_CHANGES_KEY
from flywheel.store.db import Warehouse
from tests.connectors.factories import WEATHER_TOOL, chat_request, completion, tool_call, write_jsonl

FLOAT_TOOL = {
    "type": "function",
    "function": {
        "name": "convert",
        "parameters": {"type": "dict", "properties": {"amount": {"type": "float"}}, "required": ["amount"]},
    },
}
BROKEN_TOOL = {
    "type": "function",
    "function": {"name": "broken", "parameters": {"type": "dict", "properties": {"x": {"type": "widget"}}}},
}


def record(tools: list[dict[str, Any]], i: int = 0, **request: Any) -> dict[str, Any]:
    call = tool_call('{"amount": 2.5}')
    call["function"]["name"] = tools[0]["function"]["name"] if tools else "convert"
    return {
        "request": {**chat_request(f"convert {i}"), "tools": tools, **request},
        "response": completion(None, tool_calls=[call]),
        "timestamp": 1_700_000_000 + i,
        "metadata": {"team": "t1"},
    }


def chunk(items: list[Any]) -> ParsedChunk:
    builder = ChunkBuilder()
    for item in items:
        builder.add(item)
    return builder.build()


def test_fast_and_general_paths_store_the_same_normalized_rows(tmp_path: Path) -> None:
    bad_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "gizmo"}}}
    good_format = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "dict"}}}
    docs = [record([FLOAT_TOOL], 0), record([WEATHER_TOOL], 1), record([FLOAT_TOOL, BROKEN_TOOL], 2)]
    docs += [record([WEATHER_TOOL], 3, response_format=bad_format)]
    docs += [record([WEATHER_TOOL], 4, response_format=good_format)]
    path = write_jsonl(tmp_path / "logs.jsonl", docs)
    ctx = ReadContext(workload_id="agent")
    fast, general = list(REGISTRY[NAME].items(path, ctx)), list(REGISTRY[NAME].read(path, ctx))
    assert sum(isinstance(row, tuple) for row in fast) == 3  # the two broken lines take the general path
    got, want = chunk(fast), chunk(general)
    assert got.interactions.equals(want.interactions) and got.quarantine.equals(want.quarantine)
    first = general[0]
    assert first.request["tools"][0]["function"]["parameters"]["properties"]["amount"] == {"type": "number"}
    assert first.metadata == {"team": "t1", SCHEMA_CHANGES_KEY: [
        "tools[0] (convert).parameters.type: 'dict' -> 'object'",
        "tools[0] (convert).parameters.properties.amount.type: 'float' -> 'number'",
    ]}  # fmt: skip
    assert general[1].metadata == {"team": "t1"}  # nothing to change, nothing noted
    assert general[4].request["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert [(r.reason, r.detail.split(":")[0]) for r in general[2:4]] == [
        ("invalid_tool_schema", "tools[1] (broken) parameters"),
        ("invalid_response_schema", "response_format.json_schema.schema"),
    ]


def test_standard_schemas_keep_their_ids(tmp_path: Path) -> None:
    doc = record([WEATHER_TOOL])
    path = write_jsonl(tmp_path / "logs.jsonl", [doc])
    (row,) = REGISTRY[NAME].items(path, ReadContext(workload_id="agent"))
    request = orjson.loads(row[7]) if isinstance(row, tuple) else row.request
    assert request == doc["request"]  # stored exactly as logged


def test_one_bad_schema_is_quarantined_and_the_rest_lands(tmp_path: Path) -> None:
    docs = [record([FLOAT_TOOL], i) for i in range(20)]
    docs[7] = record([BROKEN_TOOL], 7)
    path = write_jsonl(tmp_path / "logs.jsonl", docs)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    report = ingest_paths(warehouse, [path], workload_id="agent").as_dict()
    assert (report["read"], report["ingested"], report["quarantined"]) == (20, 19, 1)
    assert report["reasons"] == {"invalid_tool_schema": 1}
    again = ingest_paths(warehouse, [path], workload_id="agent").as_dict()
    assert (again["ingested"], again["duplicates"], again["quarantined"]) == (0, 19, 1)
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        (source_ref, reason, detail), *_ = con.execute(
            "SELECT source_ref, reason, detail FROM quarantine ORDER BY source_ref"
        ).fetchall()
        types = con.execute(
            "SELECT DISTINCT request->>'$.tools[0].function.parameters.type' FROM interactions"
        ).fetchall()
    assert source_ref == f"{path}:8" and reason == "invalid_tool_schema"
    assert detail.startswith("tools[0] (broken) parameters: properties.x.type: 'widget'")
    assert types == [("object",)]
