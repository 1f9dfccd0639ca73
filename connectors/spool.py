"""Flywheel's own capture spool: what `flywheel serve` writes, read back into the warehouse.

This docstring is the CONTRACT the server follows when it writes the spool.

Files: JSONL under `$FLYWHEEL_HOME/spool/`, UTF-8, one JSON object per line terminated by "\\n",
appended by the server; rotated files keep the `.jsonl` suffix or are compressed to `.jsonl.gz`.
A line written by a server that was killed mid-write has no final "\\n" and does not parse: it is
quarantined as "truncated_json" like any other broken line, never repaired.

Each line (keys marked * are required):

    flywheel_spool*    1 (format version; anything else is "wrong_schema")
    id*                str, unique per call (the server's request id; kept as metadata.spool_id)
    ts*                float, epoch seconds when the call arrived
    workload_id*       str
    client_id          str | null
    request*           the chat.completions.create payload the application sent
    response*          the ChatCompletion returned to the application (or {"error": {...}})
    served_by*         "student" | "teacher"
    model              str, the model that produced `response` (student id or teacher model)
    fallback_reason    str | null, why the teacher answered instead of the student
                       (e.g. "low_confidence", "invalid_format", "student_error"); null when served_by
                       is "student"
    latency_ms         float | null, end-to-end latency seen by the application
    prompt_tokens      int | null   (override the response's usage when given)
    completion_tokens  int | null
    cost_usd           float | null, what this call cost (teacher price, or student serving cost)
    teacher_response   ChatCompletion | null, the teacher's answer when the call was shadowed (the
                       student served, the teacher was asked in the background for comparison)
    metadata           object, optional, free-form; merged into the interaction's metadata

Mapping into Interaction: served_by, fallback_reason and the spool id go to metadata["served_by"],
metadata["fallback_reason"], metadata["spool_id"], and metadata["provenance"] says where the answer
came from: "fallback" (the teacher answered for an unsure student; curation keeps it as a label),
"proxy" (no student), "student"; a shadow teacher answer is normalised like any
response and kept as metadata["teacher_response"] (canonical {"message", "finish_reason"}), with its
model in metadata["teacher_model"].

Feedback (`POST /v1/feedback`) is not a call and never a spool line: it goes to
`<spool>/.feedback/feedback-*.jsonl` (hidden from this connector), and flywheel/feedback.py joins
each to the interaction whose metadata["spool_id"] equals its request_id.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.base import Item, ReadContext, RecordError, connector
from connectors.openai_format import normalize_completion
from connectors.openai_jsonl import build_interaction, read_json_lines
from flywheel.records import Interaction
from flywheel.serve.spool import SPOOL_VERSION  # the writer's version is the contract

NAME = "spool"
REQUIRED_KEYS = ("id", "ts", "workload_id", "request", "response", "served_by")
SERVED_BY = ("student", "teacher")


@connector(NAME, suffixes=(".jsonl", ".jsonl.gz"), splittable=True)
def read_spool(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """Flywheel's capture spool (written by `flywheel serve`), one call per line."""
    yield from read_json_lines(path, ctx, NAME, _from_line)


def _from_line(doc: dict[str, Any], ref: str, ctx: ReadContext) -> Interaction:
    version = doc.get("flywheel_spool")
    if version != SPOOL_VERSION or isinstance(version, bool):
        raise RecordError("wrong_schema", f"flywheel_spool must be {SPOOL_VERSION}, got {version!r:.40}")
    for key in REQUIRED_KEYS:
        if doc.get(key) is None:
            raise RecordError("wrong_schema", f"missing required key '{key}' (Flywheel spool line)")
    if doc["served_by"] not in SERVED_BY:
        raise RecordError(
            "wrong_schema", f"served_by must be student or teacher, got {doc['served_by']!r:.40}"
        )
    if not isinstance(doc["id"], str):
        raise RecordError("wrong_schema", "'id' must be a string")
    extra = doc.get("metadata")
    metadata: dict[str, Any] = dict(extra) if isinstance(extra, dict) else {}
    metadata.update(
        spool_id=doc["id"],
        served_by=doc["served_by"],
        fallback_reason=doc.get("fallback_reason"),
        provenance=_provenance(doc["served_by"], metadata.get("route"), doc.get("fallback_reason")),
    )
    if doc.get("teacher_response") is not None:
        shadow = normalize_completion(doc["teacher_response"])
        metadata["teacher_response"] = shadow.response
        metadata["teacher_model"] = shadow.model
    envelope = {k: doc.get(k) for k in ("ts", "workload_id", "client_id", "latency_ms", "cost_usd")}
    envelope["metadata"] = metadata
    interaction = build_interaction(envelope, doc["request"], doc["response"], ref, ctx, NAME)
    # The server knows better than the response body: it records what actually served and what it counted.
    if isinstance(doc.get("model"), str) and doc["model"]:
        interaction.model = doc["model"]
    for field in ("prompt_tokens", "completion_tokens"):
        value = doc.get(field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise RecordError("bad_field", f"{field} must be an integer, got {value!r:.40}")
            setattr(interaction, field, value)
    return interaction


def _provenance(served_by: str, route: Any, fallback_reason: Any) -> str:
    """Where the answer came from: `fallback` (the teacher took over from an unsure student: a new
    label for training), `proxy` (the workload had no student), else `student`."""
    if served_by == "student":
        return "student"
    if route in ("fallback", "proxy"):
        return route
    return "fallback" if fallback_reason else "teacher"
