"""Incremental curation: each interaction's prepared row is kept in the warehouse (migration 0014,
table `curation_prepared`), so a curate prepares and row-checks only the interactions it has not seen.

Preparing a row (parse the logged JSON, prune the template, scrub PII, parse the answer, run the row
checks) is most of a curate's cost per row and depends only on the row and on what `prep_key` hashes:
the workload's whole config (curation settings, task, labels, parser, schemas), the prompt template
found on the pool, and CACHE_VERSION (bumped when preparation changes). A row stored under another
key, or whose mutable inputs changed since (`input_key`: feedback and metadata can be merged in after
ingest, a gold label can be imported), is prepared again. What follows preparation (duplicates,
slices, caps, splits, the snapshot) runs over every row as before, so an incremental curate gives the
snapshot a full curate gives; only the work differs. Rows of a batch the Great Expectations suite has
not validated yet are always prepared (the suite needs their raw columns).

The stored row is what `stream.slim` leaves: the conversation, answer and verdict, never the raw
request/response. `flywheel forget` deletes it with the interaction.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.answers.parse import Answer
from flywheel.config import WorkloadConfig
from flywheel.quality.feedback import Outcome
from flywheel.quality.pruning import PromptTemplate
from flywheel.quality.rows import CurationRow, interaction_fields

CACHE_VERSION = 1
SCHEMA = pa.schema(
    [
        ("workload_id", pa.string()),
        ("interaction_id", pa.string()),
        ("prep_key", pa.string()),
        ("input_key", pa.string()),
        ("prepared", pa.string()),
    ]
)
# What may change on a logged call after ingest, hashed in SQL on both sides of the comparison.
INPUT_KEY_SQL = (
    "md5(coalesce(CAST(i.feedback AS VARCHAR), '') || '|' || coalesce(CAST(i.metadata AS VARCHAR), '') "
    "|| '|' || coalesce(CAST(g.label AS VARCHAR), ''))"
)


def prep_key(workload: WorkloadConfig, template: PromptTemplate | None) -> str:
    body = {
        "version": CACHE_VERSION,
        "workload": workload.model_dump(mode="json"),
        "template": template.template_id if template is not None else None,
    }
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


def encode(row: CurationRow, answer: str | None) -> str:
    """A prepared, slimmed row as JSON (`answer`: the logged answer's text, for the label proposal)."""
    parsed = row.parsed
    outcome = row.outcome
    body = {
        "request": row.request,
        "messages": row.messages,
        "target": row.target,
        "input_text": row.input_text,
        "tokens": [row.tokens_before, row.tokens_after],
        "parsed": None if parsed is None else answer_fields(parsed),
        "label": row.label,
        "gold": row.gold,
        "pii": dict(row.pii),
        "reason": row.reason,
        "detail": row.detail,
        "outcome": None if outcome is None else [outcome.value, outcome.negative, outcome.detail],
        "weight": row.weight,
        "answer": answer,
    }
    return orjson.dumps(body).decode()


def answer_fields(parsed: Answer) -> list[Any]:
    return [parsed.value, parsed.reason, parsed.detail, list(parsed.tool_names), parsed.answer_json]


def decode(record: dict[str, Any]) -> tuple[CurationRow, str | None]:
    """A CurationRow from one cached row of the interaction query, and its logged answer's text."""
    body = orjson.loads(record["prepared"])
    parsed, outcome = body["parsed"], body["outcome"]
    row = CurationRow(
        **interaction_fields(record),
        request=body["request"],
        response={},
        feedback=None,
        metadata={},
        messages=body["messages"],
        target=body["target"],
        input_text=body["input_text"],
        tokens_before=body["tokens"][0],
        tokens_after=body["tokens"][1],
        parsed=None
        if parsed is None
        else Answer(parsed[0], parsed[1], parsed[2], tuple(parsed[3]), parsed[4]),
        label=body["label"],
        gold=body["gold"],
        pii=Counter(body["pii"]) if body["pii"] else Counter(),
        reason=body["reason"],
        detail=body["detail"],
        outcome=None if outcome is None else Outcome(outcome[0], outcome[1], outcome[2]),
        weight=body["weight"],
    )
    return row, body["answer"]


class PreparedSink:
    """The rows a curate prepared, spooled chunk by chunk to a Parquet file (memory stays bounded on
    a first curate of a large pool) and stored by `write` in the curate's write transaction."""

    def __init__(self, workload_id: str, key: str) -> None:
        self.workload_id, self.key = workload_id, key
        self._dir = tempfile.TemporaryDirectory(prefix="flywheel-prepared-")
        self.path = Path(self._dir.name) / "prepared.parquet"
        self._writer: pq.ParquetWriter | None = None
        self.count = 0

    def add(self, rows: list[tuple[str, str, str]]) -> None:
        """(interaction_id, input_key, prepared JSON) of freshly prepared rows."""
        if not rows:
            return
        ids, input_keys, bodies = (list(column) for column in zip(*rows, strict=True))
        table = pa.table(
            {"workload_id": [self.workload_id] * len(ids), "interaction_id": ids,
             "prep_key": [self.key] * len(ids), "input_key": input_keys, "prepared": bodies},
            schema=SCHEMA,
        )  # fmt: skip
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, SCHEMA)
        self._writer.write_table(table)
        self.count += len(ids)

    def write(self, con: duckdb.DuckDBPyConnection) -> None:
        """Replace the stored rows of the interactions prepared now (inside the caller's transaction)."""
        if self._writer is None:
            return
        self._writer.close()
        self._writer = None
        source = f"read_parquet('{self.path.as_posix()}')"
        con.execute(
            f"DELETE FROM curation_prepared WHERE workload_id = ? AND interaction_id IN "
            f"(SELECT interaction_id FROM {source})",
            [self.workload_id],
        )
        con.execute(f"INSERT INTO curation_prepared SELECT * FROM {source}")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._dir.cleanup()
