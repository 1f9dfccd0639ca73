"""NVIDIA Data Flywheel log documents as JSONL (plain or gzip).

The NVIDIA Data Flywheel Blueprint logs every call as one document with exactly these keys:

    {"timestamp": <epoch seconds>, "workload_id": str, "client_id": str,
     "request": <raw chat.completions.create payload>, "response": <raw ChatCompletion>}

Tool-call arguments in the response may be a JSON string (as OpenAI returns them) or an already
decoded object (as some Data Flywheel exporters write them); both become canonical JSON strings.
A document missing one of the five keys is quarantined as "wrong_schema" naming the key. Extra keys
are tolerated (the schema is strict, real exports are not) and kept in metadata so nothing is lost.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.base import Item, ReadContext, RecordError, connector
from connectors.openai_jsonl import build_interaction, read_json_lines
from flywheel.records import Interaction

NAME = "nvidia"
REQUIRED_KEYS = ("timestamp", "workload_id", "client_id", "request", "response")


@connector(NAME, suffixes=(".jsonl", ".jsonl.gz"), splittable=True)
def read_nvidia(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """NVIDIA Data Flywheel log documents, one per line."""
    yield from read_json_lines(path, ctx, NAME, _from_document)


def _from_document(doc: dict[str, Any], ref: str, ctx: ReadContext) -> Interaction:
    for key in REQUIRED_KEYS:
        if key not in doc:
            raise RecordError("wrong_schema", f"missing required key '{key}' (NVIDIA Data Flywheel log)")
    if not isinstance(doc["workload_id"], str) or not doc["workload_id"]:
        raise RecordError("wrong_schema", "'workload_id' must be a non-empty string")
    if doc["client_id"] is not None and not isinstance(doc["client_id"], str | int):
        raise RecordError("wrong_schema", "'client_id' must be a string")
    if isinstance(doc["timestamp"], bool) or not isinstance(doc["timestamp"], int | float | str):
        raise RecordError("bad_timestamp", f"'timestamp' must be epoch seconds, got {doc['timestamp']!r:.80}")
    # Only the five schema keys drive the record; anything else is an exporter's addition, kept aside
    # in metadata (under "extra") so build_interaction cannot mistake it for envelope fields.
    extra = {k: v for k, v in doc.items() if k not in REQUIRED_KEYS}
    envelope = {key: doc[key] for key in ("timestamp", "workload_id", "client_id")}
    envelope["metadata"] = {"extra": extra} if extra else {}
    return build_interaction(envelope, doc["request"], doc["response"], ref, ctx, NAME)
