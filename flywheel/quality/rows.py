"""Load a workload's interactions and prepare each one for curation: prune, scrub, parse, check.

The order matters and is fixed here: the static prompt prefix is found on the raw requests (the
serving path matches raw requests against it); PII is scrubbed next, on the variable messages, the
answer and the gold label together, so placeholders agree; the answer's format is judged on the raw
answer (scrubbing must not make a bad answer look good or a good one bad), while the label is read
from the scrubbed answer, so that label and target always agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from flywheel.answers import AnswerSpec
from flywheel.config import WorkloadConfig
from flywheel.quality.answers import ParsedAnswer, parse_answer
from flywheel.quality.checks import RowView, first_failure
from flywheel.quality.feedback import Outcome, read_outcome
from flywheel.quality.pii import PiiPattern, Scrubber, scrub_message
from flywheel.quality.pruning import PromptTemplate, apply_template, estimate_tokens, message_tokens
from flywheel.records import canonical_dumps, message_text

INTERACTION_SQL = """
SELECT i.id, i.client_id, i.source_ref, i.batch_id, i.status, i.ts, i.request, i.response, i.feedback,
       i.metadata, i.prompt_tokens, i.completion_tokens, g.label AS gold_label
FROM interactions i
LEFT JOIN gold_labels g ON g.workload_id = i.workload_id AND g.interaction_id = i.id
WHERE i.workload_id = ?
ORDER BY i.ingested_at, i.ts NULLS LAST, i.id
"""


@dataclass(slots=True)
class CurationRow:
    """One interaction as curation sees it; `reason` is None while it is still kept."""

    interaction_id: str
    client_id: str | None
    source_ref: str
    batch_id: str
    status: str
    ts: datetime | None
    request: dict[str, Any]
    response: dict[str, Any]
    feedback: Any
    metadata: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    imported_gold: str | None = None  # from gold_labels (`flywheel labels import`): wins over metadata
    messages: list[dict[str, Any]] = field(default_factory=list)
    target: dict[str, Any] | None = None
    input_text: str = ""
    tokens_before: int = 0
    tokens_after: int = 0
    parsed: ParsedAnswer | None = None
    label: str | None = None
    gold: str | None = None
    pii: Counter[str] = field(default_factory=Counter)
    reason: str | None = None
    detail: str = ""
    outcome: Outcome | None = None  # the configured feedback field's value and reading
    weight: float = 1.0  # below 1: kept, but downweighted (negative feedback)
    dup_group: str | None = None
    slice: str | None = None
    split: str | None = None

    @property
    def kept(self) -> bool:
        return self.reason is None

    def reject(self, reason: str, detail: str = "") -> None:
        if self.reason is None:
            self.reason, self.detail = reason, detail


def interaction_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The CurationRow fields that come straight from an interaction row's columns (the raw row of
    INTERACTION_SQL and the stored prepared row's query share them)."""
    return {
        "interaction_id": record["id"],
        "client_id": record["client_id"],
        "source_ref": record["source_ref"],
        "batch_id": record["batch_id"],
        "status": record["status"],
        "ts": record["ts"],
        "prompt_tokens": record["prompt_tokens"],
        "completion_tokens": record["completion_tokens"],
        "imported_gold": record["gold_label"],
    }


def row_from_record(record: dict[str, Any]) -> CurationRow:
    """A CurationRow from one row of INTERACTION_SQL (as Polars yields it)."""
    metadata = orjson.loads(record["metadata"]) if record["metadata"] else {}
    response = orjson.loads(record["response"])
    shadow = metadata.get("teacher_response") if metadata.get("served_by") == "student" else None
    if isinstance(shadow, dict) and isinstance(shadow.get("message"), dict):
        # The teacher answered this served request in the background (a shadow call): its answer is
        # a label like any logged teacher answer, most useful where the student disagreed with it.
        response = shadow
        metadata = {**metadata, "label_from": "shadow"}
    return CurationRow(
        **interaction_fields(record),
        request=orjson.loads(record["request"]),
        response=response,
        feedback=orjson.loads(record["feedback"]) if record["feedback"] else None,
        metadata=metadata,
    )


def prepare_rows(
    rows: list[CurationRow],
    workload: WorkloadConfig,
    template: PromptTemplate | None,
    patterns: tuple[PiiPattern, ...],
    progress: Callable[[int], None] | None = None,
) -> None:
    """Fill in messages, target, label, PII counts and the first failing row check of every row."""
    config = workload.curation
    spec = AnswerSpec.of(workload)  # once per chunk, not twice per row
    for index, row in enumerate(rows):
        prepare_row(row, workload, template, patterns, spec)
        if config.feedback is not None:
            row.outcome = read_outcome(row_parts(row), config.feedback)
        view = RowView(
            row.status,
            row.response,
            row.feedback,
            input_tokens(row),
            row.parsed,
            row.outcome,
            has_gold=row.imported_gold is not None,
            served_by=served_by(row, config.shadow_labels),
        )
        verdict = first_failure(view, config)
        if verdict is None and row.parsed is not None and row.label is None:
            verdict = ("pii_in_structure", "the answer is no longer valid once PII is scrubbed")
        if verdict is not None:
            reason, detail = verdict
            row.reject(reason, Scrubber(patterns)(detail))
        elif config.feedback is not None and row.outcome is not None and row.outcome.negative:
            row.weight = config.feedback.weight  # action "downweight": "exclude" rejected it above
        if progress and index % 500 == 499:
            progress(500)
    if progress and len(rows) % 500:
        progress(len(rows) % 500)


def served_by(row: CurationRow, shadow_labels: bool) -> str | None:
    """Who answered the row's label: a shadow call's target is the teacher's answer, unless the
    workload takes no shadow labels (then the call counts as what it was: the student's)."""
    metadata = row.metadata if isinstance(row.metadata, dict) else {}
    if metadata.get("label_from") == "shadow" and shadow_labels:
        return "teacher"
    return metadata.get("served_by")


def prepare_row(
    row: CurationRow,
    workload: WorkloadConfig,
    template: PromptTemplate | None,
    patterns: tuple[PiiPattern, ...],
    spec: AnswerSpec | None = None,
) -> None:
    raw_messages = row.request.get("messages") or []
    pruned = apply_template(raw_messages, template)
    row.tokens_before = message_tokens(raw_messages)
    row.tokens_after = message_tokens(pruned)
    scrubber = Scrubber(patterns)
    row.messages = [scrub_message(m, scrubber) for m in pruned]
    message = row.response.get("message") if row.status == "ok" else None
    if isinstance(message, dict):
        row.target = scrub_message(message, scrubber)
        row.parsed = parse_answer(workload, message, row.request, spec)
        if row.parsed.reason is None:
            row.label = parse_answer(workload, row.target, row.request, spec).label
    gold = row.imported_gold if row.imported_gold is not None else row.metadata.get("label")
    if gold is not None:
        row.gold = scrubber(gold if isinstance(gold, str) else canonical_dumps(gold).decode())
    row.input_text = conversation_text(row.messages)
    row.pii = scrubber.counts


def row_parts(row: CurationRow) -> dict[str, Any]:
    """The roots a `curation.feedback.field` path starts from."""
    return {
        "feedback": row.feedback,
        "metadata": row.metadata,
        "request": row.request,
        "response": row.response,
    }


def conversation_text(messages: list[dict[str, Any]]) -> str:
    """The turns of a conversation without system prompts: what near-duplicates are judged on.

    A long system prompt left in (no template found) would make every pair of requests look alike.
    """
    turns = [m for m in messages if m.get("role") not in ("system", "developer")] or messages
    return "\n".join(message_text(m) for m in turns)


def input_tokens(row: CurationRow) -> int:
    return sum(estimate_tokens(message_text(m)) for m in row.messages)
