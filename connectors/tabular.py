"""Generic tables of prompts and answers: CSV/TSV (plain or gzip) and Parquet, with a column mapping.

`ctx.mapping` names the columns (all optional):
  prompt (default "prompt"), response (default "response" when that column exists), label (default
  "label" when that column exists), system (a column with a per-row system message), system_prompt
  (a literal system message for every row), client_id, timestamp, model, workload_id (columns), and
  delimiter (CSV only; default "," or tab for .tsv).

Each row becomes request {"messages": [system?, {"role": "user", "content": prompt}]} and response
{"message": {"role": "assistant", "content": <response, else label>}, "finish_reason": "stop"}.
A label is the gold answer: it is also kept in metadata["label"]. Unmapped columns are kept in
metadata["columns"] so nothing is lost. A mapped column missing from the header is a SourceError
naming it and the columns present.

CSV streams through the csv module (quoted newlines are fine); source_ref "file:line" is the physical
line where the row starts. A row with invalid UTF-8 is quarantined as "invalid_utf8", a row with the
wrong number of fields as "wrong_field_count", a row the csv module cannot parse as "invalid_csv".
Blank lines are not rows. Parquet streams by record batches; source_ref is "file:row N" (1-based).
An empty cell is kept as an empty string (curation judges empty answers); a null prompt or a null
answer is quarantined as "missing_field".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from connectors.base import (
    MAX_LINE_BYTES,
    Item,
    ReadContext,
    RecordError,
    SourceError,
    connector,
    ensure_serializable,
    open_binary,
    raw_text,
)
from flywheel.records import Interaction, Rejected, to_timestamp

BATCH_ROWS = 1024
COLUMN_KEYS = ("prompt", "response", "label", "system", "client_id", "timestamp", "model", "workload_id")
# One huge cell must become a row, not a csv.Error; the limit matches the JSONL line limit.
csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))


@connector("csv", suffixes=(".csv", ".csv.gz", ".tsv", ".tsv.gz"))
def read_csv(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """A CSV/TSV table of prompts and answers, with a column mapping."""
    delimiter = ctx.mapping.get("delimiter") or ("\t" if ".tsv" in path.name.lower() else ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise SourceError(f"{path}: the delimiter must be one character, got {delimiter!r}")
    # surrogateescape keeps undecodable bytes so that one bad row is quarantined, not the whole file.
    with io.TextIOWrapper(
        open_binary(path), encoding="utf-8-sig", errors="surrogateescape", newline=""
    ) as text:
        yield from _read_csv_rows(path, ctx, csv.reader(text, delimiter=delimiter), delimiter)


def _read_csv_rows(path: Path, ctx: ReadContext, reader: Any, delimiter: str) -> Iterator[Item]:
    columns: _Columns | None = None
    line = 0  # physical lines consumed so far; csv.reader yields [] for a blank line, so it stays exact
    while True:
        ref = f"{path}:{line + 1}"
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            consumed, line = line, reader.line_num
            yield Rejected("csv", ref, "invalid_csv", "", str(exc))
            if line == consumed:  # the reader did not move: stop rather than loop forever
                return
            continue
        except (EOFError, OSError) as exc:  # truncated gzip: one item says where reading stopped
            yield Rejected("csv", ref, "unreadable_file", "", f"{type(exc).__name__}: {exc}")
            return
        line = reader.line_num
        if not row:
            continue  # a blank line is not a row
        if columns is None:
            columns = _Columns(path, [_decode_header(name) for name in row], ctx.mapping)
            continue
        bad = next((index for index, cell in enumerate(row) if not _is_utf8(cell)), None)
        if bad is not None:
            yield Rejected(
                "csv", ref, "invalid_utf8", _raw_row(row, delimiter), f"field {bad + 1} is not UTF-8"
            )
        elif len(row) != len(columns.names):
            detail = f"expected {len(columns.names)} fields, got {len(row)}"
            yield Rejected("csv", ref, "wrong_field_count", _raw_row(row, delimiter), detail)
        else:
            record = dict(zip(columns.names, row, strict=True))
            yield _build(record, columns, ref, ctx, "csv", lambda row=row: _raw_row(row, delimiter))


def _raw_row(row: list[str], delimiter: str) -> str:
    """The row written back as CSV text (quoting included), for quarantine."""
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\n").writerow(row)
    return raw_text(buffer.getvalue().rstrip("\n").encode("utf-8", "surrogateescape"))


@connector("parquet", suffixes=(".parquet",))
def read_parquet(path: Path, ctx: ReadContext) -> Iterator[Item]:
    """A Parquet table of prompts and answers, with a column mapping."""
    parquet = open_parquet(path)
    columns = _Columns(path, list(parquet.schema_arrow.names), ctx.mapping)
    for ref, record in iter_parquet_rows(parquet, path, "parquet"):
        if isinstance(record, Rejected):
            yield record
        else:
            yield _build(record, columns, ref, ctx, "parquet", lambda r=record: raw_text(repr(r)))


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(f"{path}: not a readable Parquet file: {exc}") from None


def iter_parquet_rows(parquet: pq.ParquetFile, path: Path, source: str) -> Iterator[tuple[str, Any]]:
    """(source_ref "file:row N", row dict) streamed by record batches; a corrupt page ends the file
    with one (ref, Rejected) saying where reading stopped, like a truncated gzip does for JSONL."""
    row = 0
    try:
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS):
            for record in batch.to_pylist():
                row += 1
                yield f"{path}:row {row}", record
    except (pa.ArrowException, OSError) as exc:
        ref = f"{path}:row {row + 1}"
        yield ref, Rejected(source, ref, "unreadable_file", "", f"{type(exc).__name__}: {exc}")


class _Columns:
    """The mapping resolved against a header: which column plays which role."""

    def __init__(self, path: Path, names: list[str], mapping: dict[str, Any]) -> None:
        self.names = names
        present = set(names)
        self.roles: dict[str, str] = {}
        for key in COLUMN_KEYS:
            column = mapping.get(key)
            if column is None and key in ("prompt", "response", "label") and key in present:
                column = key  # the conventional names work without a mapping
            if column is None:
                continue
            if column not in present:
                shown = ", ".join(names) if names else "none"
                raise SourceError(
                    f"{path}: mapped column {key}={column!r} is not in the header (columns: {shown})"
                )
            self.roles[key] = column
        if "prompt" not in self.roles:
            raise SourceError(
                f"{path}: no prompt column (columns: {', '.join(names)}); pass the mapping prompt=<column>"
            )
        if "response" not in self.roles and "label" not in self.roles:
            raise SourceError(
                f"{path}: no response or label column (columns: {', '.join(names)});"
                " pass the mapping response=<column> or label=<column>"
            )
        self.system_prompt = mapping.get("system_prompt")
        self.extra = [name for name in names if name not in self.roles.values()]


def _build(record: dict[str, Any], columns: _Columns, ref: str, ctx: ReadContext, source: str,
           raw: Callable[[], str]) -> Item:  # fmt: skip
    """One row -> one item; the raw text is only rendered for a row that is quarantined."""
    try:
        return ensure_serializable(_interaction(record, columns, ref, ctx, source))
    except RecordError as exc:
        return Rejected(source, ref, exc.reason, raw(), str(exc))


def _interaction(
    record: dict[str, Any], columns: _Columns, ref: str, ctx: ReadContext, source: str
) -> Interaction:
    def cell(role: str) -> Any:
        column = columns.roles.get(role)
        return record.get(column) if column is not None else None

    prompt = cell("prompt")
    if prompt is None:
        raise RecordError("missing_field", f"prompt column {columns.roles['prompt']!r} is null")
    label = cell("label")
    answer = cell("response") if "response" in columns.roles else label
    if answer is None:
        role = "response" if "response" in columns.roles else "label"
        raise RecordError("missing_field", f"{role} column {columns.roles[role]!r} is null")
    messages: list[dict[str, Any]] = []
    system = cell("system") or columns.system_prompt  # a per-row system message wins over the literal
    if system not in (None, ""):
        messages.append({"role": "system", "content": _text(system)})
    messages.append({"role": "user", "content": _text(prompt)})
    response = {"message": {"role": "assistant", "content": _text(answer)}, "finish_reason": "stop"}
    metadata: dict[str, Any] = {}
    if label is not None:
        metadata["label"] = _jsonable(label)
    extra = {name: _jsonable(record.get(name)) for name in columns.extra}
    if extra:
        metadata["columns"] = extra
    workload_id = cell("workload_id") or ctx.workload_id
    if not workload_id:
        raise RecordError("missing_workload_id", "no workload_id column value and none given")
    try:
        ts = to_timestamp(cell("timestamp"))
    except (ValueError, OverflowError, OSError) as exc:
        raise RecordError("bad_timestamp", str(exc)) from exc
    client, model = cell("client_id"), cell("model")
    return Interaction(
        workload_id=str(workload_id), request={"messages": messages}, response=response, source=source,
        source_ref=ref, client_id=str(client) if client not in (None, "") else None, ts=ts,
        model=str(model) if model not in (None, "") else None, metadata=metadata,
    )  # fmt: skip


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(_jsonable(value))


def _jsonable(value: Any) -> Any:
    """Parquet cells can be bytes, decimals, dates...: keep JSON-native values, stringify the rest."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_utf8(cell: str) -> bool:
    try:
        cell.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _decode_header(name: str) -> str:
    return name.encode("utf-8", "surrogateescape").decode("utf-8", errors="replace").strip()
