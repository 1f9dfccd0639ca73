"""Gold labels from people: attach a file of labels (CSV, TSV, JSONL/JSON, Parquet) to a workload's
existing interactions, so that the next curation uses them as gold and the gate can judge against them.

How a file row finds its interactions (`match`):
- "id": the key is the interaction id (file column `id`, else `interaction_id`, unless `column` names it).
- "prompt": the key is the user's prompt: the last user message of the logged request, whitespace
  collapsed. A key that equals no whole message may equal one line of one (a prompt template that puts
  the text on a line of its own). File column `prompt`, else `text`, else `input`, else the file's only
  column besides the label, unless `column` names it.
- "column": the key is the value of the source column `column` that ingest kept (tabular sources keep
  unmapped columns in metadata["columns"]); the file has a column of the same name.
One key may match several interactions (the same prompt logged twice): all of them get the label; gold
describes the input. An interaction that two rows label differently is a conflict and gets neither.

Labels are stored in `gold_labels` (one per interaction; a re-import replaces it): interaction ids are
content hashes, so a label lives beside its interaction rather than rewriting it. Curation reads it as
the row's gold (before metadata["label"]). The gate's reference "auto" is gold only when every eval
example has gold; with partial gold it stays on the teacher reference (a score over a mix of gold and
teacher references would mean neither) and `--reference gold` refuses, naming how many eval rows lack
gold. The import report says how much of the current eval split has gold, so a person knows how many
more rows to label.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb
import orjson

from flywheel.config import WorkloadConfig
from flywheel.datasets.snapshots import latest_snapshot
from flywheel.records import canonical_dumps, message_text, utcnow
from flywheel.store.db import Warehouse
from flywheel.store.keyed import insert_rows

MatchOn = Literal["prompt", "id", "column"]
MATCHES = ("prompt", "id", "column")
DEFAULT_KEYS = {"id": ("id", "interaction_id"), "prompt": ("prompt", "text", "input")}
SAMPLE = 20  # unmatched/invalid/conflicting rows listed in a report (the counts are complete)
Record = tuple[str, dict[str, Any]]  # (file:line, row)


class GoldFileError(ValueError):
    """The label file cannot be used: unreadable, unknown format, or a missing column."""


@dataclass(frozen=True, slots=True)
class LabelRow:
    key: str
    label: str
    ref: str  # file:line or file:row N


@dataclass
class GoldImport:
    """What one import read, matched and stored."""

    import_id: str
    workload_id: str
    path: str
    match: str
    key_column: str
    label_column: str
    rows: int = 0
    matched: int = 0
    unmatched: list[dict[str, str]] = field(default_factory=list)
    invalid: list[dict[str, str]] = field(default_factory=list)
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    labeled: int = 0
    changed: int = 0
    eval_with_gold: int | None = None
    eval_total: int | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "workload": self.workload_id,
            "path": self.path,
            "match": self.match,
            "key_column": self.key_column,
            "label_column": self.label_column,
            "rows": self.rows,
            "matched": self.matched,
            "unmatched": len(self.unmatched),
            "invalid": len(self.invalid),
            "conflicts": len(self.conflicts),
            "labeled": self.labeled,
            "changed": self.changed,
            "eval": {"with_gold": self.eval_with_gold, "total": self.eval_total},
            "dry_run": self.dry_run,
            "unmatched_rows": self.unmatched[:SAMPLE],
            "invalid_rows": self.invalid[:SAMPLE],
            "conflicting": self.conflicts[:SAMPLE],
        }


def import_gold_labels(
    warehouse: Warehouse,
    workload: WorkloadConfig,
    path: str | Path,
    *,
    match: MatchOn = "prompt",
    column: str | None = None,
    label_column: str = "label",
    dry_run: bool = False,
) -> GoldImport:
    """Read `path`, match its rows to the workload's interactions and store their labels as gold."""
    if match not in MATCHES:
        raise ValueError(f"match must be one of {', '.join(MATCHES)}, got {match!r}")
    if match == "column" and not column:
        raise ValueError("match 'column' needs the column name (--column NAME)")
    source = Path(path)
    columns, records = read_records(source)
    key_column = resolve_key_column(source, match, column, columns, label_column)
    report = GoldImport(
        f"gold-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        workload.id,
        str(source),
        match,
        key_column,
        label_column,
        rows=len(records),
        dry_run=dry_run,
    )
    rows = label_rows(records, key_column, label_column, workload, report)
    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse.location}: no warehouse yet (run `flywheel ingest` first)")
    warehouse.ensure_schema()
    index = warehouse.read(lambda con: InteractionIndex.load(con, workload.id, match, column))
    labels = assign_labels(rows, index, report)
    if dry_run:
        report.labeled = len(labels)
        return report
    warehouse.write(lambda con: store_labels(con, report, labels))
    return report


def read_records(path: Path) -> tuple[list[str], list[Record]]:
    """(column names, [(file:line, row)]) of a CSV/TSV, JSONL/JSON or Parquet file."""
    if not path.is_file():
        raise GoldFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv"):
            return _csv_records(path, "\t" if suffix == ".tsv" else ",")
        if suffix in (".jsonl", ".ndjson"):
            return _columns(_jsonl_records(path))
        if suffix == ".json":
            return _columns(_json_records(path))
        if suffix in (".parquet", ".pq"):
            return _parquet_records(path)
    except UnicodeDecodeError as exc:
        raise GoldFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    raise GoldFileError(f"{path}: unknown label file format {path.suffix!r} (csv, tsv, jsonl, json, parquet)")


def _csv_records(path: Path, delimiter: str) -> tuple[list[str], list[Record]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        columns = [name.strip() for name in reader.fieldnames or []]
        reader.fieldnames = columns
        records = [(f"{path}:{reader.line_num}", dict(row)) for row in reader]
    return columns, records


def _jsonl_records(path: Path) -> list[Record]:
    records = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            records.append((f"{path}:{number}", _json_object(line, f"{path}:{number}")))
    return records


def _json_records(path: Path) -> list[Record]:
    try:
        loaded = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise GoldFileError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(loaded, list):
        raise GoldFileError(f"{path}: a JSON label file is a list of objects (or use JSONL)")
    return [(f"{path}:item {i}", item if isinstance(item, dict) else {}) for i, item in enumerate(loaded, 1)]


def _json_object(line: bytes, ref: str) -> dict[str, Any]:
    try:
        loaded = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise GoldFileError(f"{ref}: not a JSON object ({exc})") from exc
    if not isinstance(loaded, dict):
        raise GoldFileError(f"{ref}: not a JSON object")
    return loaded


def _parquet_records(path: Path) -> tuple[list[str], list[Record]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise GoldFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    rows = table.to_pylist()
    return list(table.column_names), [(f"{path}:row {i}", row) for i, row in enumerate(rows, start=1)]


def _columns(records: list[Record]) -> tuple[list[str], list[Record]]:
    names: dict[str, None] = {}
    for _, row in records:
        names.update(dict.fromkeys(row))
    return list(names), records


def resolve_key_column(
    path: Path, match: str, column: str | None, columns: list[str], label_column: str
) -> str:
    """The file column holding each row's key; GoldFileError naming the file when it is missing."""
    listed = ", ".join(columns) or "none"
    if label_column not in columns:
        raise GoldFileError(f"{path}: no label column {label_column!r} (columns: {listed})")
    if column:
        if column not in columns:
            raise GoldFileError(f"{path}: no column {column!r} (columns: {listed})")
        return column
    for name in DEFAULT_KEYS.get(match, ()):
        if name in columns:
            return name
    others = [name for name in columns if name != label_column]
    if match == "prompt" and len(others) == 1:
        return others[0]
    wanted = " or ".join(repr(n) for n in DEFAULT_KEYS.get(match, ()))
    raise GoldFileError(f"{path}: no key column {wanted} (columns: {listed}); pass --column NAME")


def label_rows(
    records: list[Record], key_column: str, label_column: str, workload: WorkloadConfig, report: GoldImport
) -> list[LabelRow]:
    """Usable rows; the others go to report.invalid with their file:line and reason."""
    rows = []
    for ref, record in records:
        key = _text(record.get(key_column))
        label = _label(record.get(label_column), workload)
        if not key:
            report.invalid.append({"ref": ref, "reason": f"empty key column {key_column!r}"})
        elif label is None:
            report.invalid.append({"ref": ref, "reason": _bad_label(record.get(label_column), workload)})
        else:
            rows.append(LabelRow(key, label, ref))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return canonical_dumps(value).decode()
    return str(value).strip()


def label_for(value: Any, workload: WorkloadConfig) -> str | None:
    """The gold string a person's answer is stored as (None: not usable for the workload)."""
    return _label(value, workload)


def _label(value: Any, workload: WorkloadConfig) -> str | None:
    """The stored gold string: a label of the workload's set (case-insensitive), else the text."""
    text = _text(value)
    if not text:
        return None
    if workload.task != "classification" or not workload.labels:
        return text
    by_folded = {label.casefold(): label for label in workload.labels}
    return text if text in workload.labels else by_folded.get(text.casefold())


def _bad_label(value: Any, workload: WorkloadConfig) -> str:
    if not _text(value):
        return "empty label"
    return f"label {_text(value)!r} is not one of the workload's labels"


def normalize(text: str) -> str:
    return " ".join(text.split())


@dataclass
class InteractionIndex:
    """Keys -> interaction ids: whole keys first, then (prompt) single lines of a prompt."""

    whole: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, list[str]] = field(default_factory=dict)
    normalize_key: bool = True

    @classmethod
    def load(
        cls, con: duckdb.DuckDBPyConnection, workload_id: str, match: str, column: str | None
    ) -> InteractionIndex:
        index = cls(normalize_key=match != "id")
        rows = con.execute(
            "SELECT id, request, metadata FROM interactions WHERE workload_id = ? ORDER BY id", [workload_id]
        ).fetchall()
        for interaction_id, request, metadata in rows:
            for key in _keys(interaction_id, request, metadata, match, column):
                index.whole.setdefault(key, []).append(interaction_id)
            if match == "prompt":
                for line in _prompt_lines(request):
                    index.lines.setdefault(line, []).append(interaction_id)
        return index

    def lookup(self, key: str) -> list[str]:
        key = normalize(key) if self.normalize_key else key.strip().lower()
        found = self.whole.get(key) or self.lines.get(key) or []
        return list(dict.fromkeys(found))


def _keys(interaction_id: str, request: Any, metadata: Any, match: str, column: str | None) -> Iterator[str]:
    if match == "id":
        yield interaction_id.lower()
    elif match == "prompt":
        prompt = user_prompt(request)
        if prompt:
            yield normalize(prompt)
    else:
        value = _source_column(metadata, column or "")
        if value:
            yield normalize(value)


def user_prompt(request: Any) -> str:
    """The text of the last user message of a logged request (JSON text or dict)."""
    body = orjson.loads(request) if isinstance(request, str | bytes) else request
    messages = (body or {}).get("messages") or []
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return message_text(users[-1]) if users else ""


def _prompt_lines(request: Any) -> list[str]:
    lines = {normalize(line) for line in user_prompt(request).splitlines()}
    return [line for line in lines if line]


def _source_column(metadata: Any, column: str) -> str:
    data = orjson.loads(metadata) if isinstance(metadata, str | bytes) else metadata or {}
    columns = data.get("columns") if isinstance(data.get("columns"), dict) else {}
    value = columns.get(column, data.get(column))
    return _text(value)


def assign_labels(rows: list[LabelRow], index: InteractionIndex, report: GoldImport) -> dict[str, LabelRow]:
    """interaction id -> the row that labels it; unmatched rows and conflicts go to the report."""
    labels: dict[str, LabelRow] = {}
    conflicting: dict[str, list[LabelRow]] = {}
    for row in rows:
        ids = index.lookup(row.key)
        if not ids:
            report.unmatched.append({"ref": row.ref, "key": row.key[:200]})
            continue
        report.matched += 1
        for interaction_id in ids:
            prior = labels.setdefault(interaction_id, row)
            if prior.label != row.label:
                conflicting.setdefault(interaction_id, [prior]).append(row)
    for interaction_id, rivals in conflicting.items():
        labels.pop(interaction_id, None)
        report.conflicts.append(
            {
                "interaction_id": interaction_id,
                "labels": sorted({r.label for r in rivals}),
                "refs": [r.ref for r in rivals],
            }
        )
    return labels


def store_labels(con: duckdb.DuckDBPyConnection, report: GoldImport, labels: dict[str, LabelRow]) -> None:
    """Upsert the labels and record the import, in the caller's transaction; fills labeled/changed/eval."""
    now = utcnow()
    ids = sorted(labels)
    before = dict(
        con.execute(
            "SELECT interaction_id, label FROM gold_labels WHERE workload_id = ? AND list_contains(?, "
            "interaction_id)",
            [report.workload_id, ids],
        ).fetchall()
    )
    report.labeled = len(ids)
    report.changed = sum(1 for i in ids if before.get(i) != labels[i].label)
    if ids:
        insert_rows(
            con,
            "gold_labels",
            ["workload_id", "interaction_id", "label", "import_id", "source_ref", "imported_at"],
            [(report.workload_id, i, labels[i].label, report.import_id, labels[i].ref, now) for i in ids],
            key=["workload_id", "interaction_id"],
            replace=True,
        )
    report.eval_with_gold, report.eval_total = eval_gold_coverage(con, report.workload_id)
    con.execute(
        "INSERT INTO gold_label_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            report.import_id,
            report.workload_id,
            report.path,
            report.match,
            report.key_column,
            report.label_column,
            report.rows,
            report.matched,
            len(report.unmatched),
            report.labeled,
            now,
            orjson.dumps(report.as_dict()).decode(),
        ],
    )


def eval_gold_coverage(con: duckdb.DuckDBPyConnection, workload_id: str) -> tuple[int | None, int | None]:
    """(eval examples with gold, eval examples) of the latest snapshot, counting imported labels the
    next curation will attach; (None, None) before the first curation."""
    snapshot_id = latest_snapshot(con, workload_id)
    if snapshot_id is None:
        return None, None
    row = con.execute(
        """
        SELECT count(*) FILTER (WHERE e.gold IS NOT NULL OR g.label IS NOT NULL), count(*)
        FROM snapshot_examples e
        LEFT JOIN gold_labels g ON g.workload_id = e.workload_id AND g.interaction_id = e.interaction_id
        WHERE e.snapshot_id = ? AND e.split = 'eval'
        """,
        [snapshot_id],
    ).fetchall()
    return int(row[0][0]), int(row[0][1])


__all__ = ["GoldFileError", "GoldImport", "import_gold_labels"]
