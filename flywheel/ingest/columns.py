"""Connector items -> Arrow tables for the warehouse, one record at a time.

Each item is turned into column values as soon as it is read, so a chunk holds only strings, bytes
and numbers: no per-record objects or parsed JSON trees stay alive. That keeps memory flat and,
because strings and numbers are not tracked by the cyclic garbage collector, keeps its passes from
rescanning every record of the chunk (on 20k-record chunks those passes cost more than parsing).
Canonical JSON stays as the bytes orjson wrote; Arrow checks they are UTF-8 in C.

The request and response JSON (most of a row's bytes) are copied into one growing buffer per column
instead of being kept as a bytes object per record: keeping 100k freshly allocated bytes objects
alive costs more than half again the time of parsing them (13 against 9 us a line, measured on
bench/ingest.py's lines), while the copies reuse the same few allocations.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from flywheel.ingest.arrow_columns import column, utf8_strings
from flywheel.records import Interaction, Rejected, Row, quarantine_id

INTERACTION_SCHEMA = pa.schema(
    [
        ("id", pa.large_string()),
        ("workload_id", pa.large_string()),
        ("client_id", pa.large_string()),
        ("source", pa.large_string()),
        ("source_ref", pa.large_string()),
        ("ts", pa.timestamp("us")),
        ("model", pa.large_string()),
        ("request", pa.large_string()),
        ("response", pa.large_string()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("cost_usd", pa.float64()),
        ("logprobs", pa.large_string()),
        ("feedback", pa.large_string()),
        ("status", pa.large_string()),
        ("metadata", pa.large_string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("id", pa.large_string()),
        ("raw", pa.large_string()),
        ("source", pa.large_string()),
        ("source_ref", pa.large_string()),
        ("reason", pa.large_string()),
        ("detail", pa.large_string()),
    ]
)


@dataclass(slots=True)
class ParsedChunk:
    """Consecutive input units as tables; `repeated` counts ids seen earlier in the same chunk."""

    interactions: pa.Table
    repeated: int
    quarantine: pa.Table
    reasons: Counter[str]
    read: int


_REQUEST = INTERACTION_SCHEMA.get_field_index("request")
_RESPONSE = INTERACTION_SCHEMA.get_field_index("response")
assert _RESPONSE == _REQUEST + 1  # rows are split around the two as row[:_REQUEST] + row[_RESPONSE + 1:]
_OTHER_FIELDS = [f for i, f in enumerate(INTERACTION_SCHEMA) if i not in (_REQUEST, _RESPONSE)]
_FEEDBACK = INTERACTION_SCHEMA.get_field_index("feedback")
_METADATA = INTERACTION_SCHEMA.get_field_index("metadata")
assert _REQUEST < _FEEDBACK < _METADATA  # their places in the rows kept without request and response


def merge_carried(kept: tuple[Any, ...], repeat: Row) -> tuple[Any, ...]:
    """A kept row (request and response left out) with what a repeat of it carries: its feedback when
    the kept row has none, and metadata keys the kept row lacks (the kept row's values win)."""
    feedback, metadata = repeat[_FEEDBACK], repeat[_METADATA]
    if feedback is None and metadata is None:
        return kept
    row = list(kept)
    at_feedback, at_metadata = _FEEDBACK - 2, _METADATA - 2
    if row[at_feedback] is None:
        row[at_feedback] = feedback
    if metadata is not None:
        merged = orjson.loads(metadata) | (orjson.loads(row[at_metadata]) if row[at_metadata] else {})
        row[at_metadata] = orjson.dumps(merged, option=orjson.OPT_NON_STR_KEYS)
    return tuple(row)


class _JsonColumn:
    """A NOT NULL string column as one buffer plus value sizes, filled one UTF-8 value at a time."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.sizes = array("q")

    def append(self, value: bytes | str) -> None:
        if value.__class__ is not bytes:
            value = value.encode() if isinstance(value, str) else bytes(value)
        self.data += value
        self.sizes.append(len(value))

    def array(self) -> pa.Array:
        return utf8_strings(self.data, self.sizes)


class ChunkBuilder:
    """Accumulates items as columns; `build()` returns the chunk and starts a new one."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.read = 0
        self._repeated = 0
        self._seen: dict[str, int] = {}  # id -> its row in self._rows
        self._rows: list[tuple[Any, ...]] = []  # rows without request and response
        self._request = _JsonColumn()
        self._response = _JsonColumn()
        self._rejected: list[tuple[str, ...]] = []
        self._reasons: Counter[str] = Counter()

    def add(self, item: Row | Interaction | Rejected) -> None:
        """One input unit: a row a connector built itself, an Interaction, or a rejection."""
        self.read += 1
        if item.__class__ is not tuple:
            if isinstance(item, Rejected):
                self._reject(item)
                return
            item = item.row()
        kept = self._seen.get(item[0])
        if kept is not None:
            self._repeated += 1
            self._rows[kept] = merge_carried(self._rows[kept], item)
            return
        self._seen[item[0]] = len(self._rows)
        self._request.append(item[_REQUEST])
        self._response.append(item[_RESPONSE])
        self._rows.append(item[:_REQUEST] + item[_RESPONSE + 1 :])

    def _reject(self, item: Rejected) -> None:
        reason_id = quarantine_id(item.source_ref, item.raw, item.reason)
        self._rejected.append((reason_id, item.raw, item.source, item.source_ref, item.reason, item.detail))
        self._reasons[item.reason] += 1

    def build(self) -> ParsedChunk:
        others = _arrays(self._rows, _OTHER_FIELDS)
        arrays = [*others[:_REQUEST], self._request.array(), self._response.array(), *others[_REQUEST:]]
        interactions = pa.Table.from_arrays(arrays, schema=INTERACTION_SCHEMA)
        quarantine = _table(self._rejected, QUARANTINE_SCHEMA)
        chunk = ParsedChunk(interactions, self._repeated, quarantine, self._reasons, self.read)
        self._reset()
        return chunk


def _table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays(_arrays(rows, list(schema)), schema=schema)


def _arrays(rows: list[tuple[Any, ...]], fields: list[pa.Field]) -> list[pa.Array]:
    # Rows transposed once: cheaper than appending to one list per column per row.
    columns = list(zip(*rows, strict=True)) or [() for _ in fields]
    return [column(values, f.type) for values, f in zip(columns, fields, strict=True)]


def build_chunks(items: Iterable[Row | Interaction | Rejected], batch_size: int) -> Iterator[ParsedChunk]:
    """Chunks of `batch_size` consecutive items (the last one may be shorter)."""
    builder = ChunkBuilder()
    for item in items:
        builder.add(item)
        if builder.read >= batch_size:
            yield builder.build()
    if builder.read:
        yield builder.build()
