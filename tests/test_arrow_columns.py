"""flywheel/ingest/arrow_columns.py builds the arrays pyarrow.array would, without importing pandas."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from flywheel.ingest.arrow_columns import booleans, column

STRING = pa.large_string()
STAMP = pa.timestamp("us")
CASES: list[tuple[list[Any], pa.DataType]] = [
    (["a", None, "é漢😀", ""], STRING),
    ([b'{"k":1}', None, "é".encode()], STRING),
    (["text", b"bytes", None], STRING),
    ([None, None], STRING),
    ([], STRING),
    (["x" * 100_000], STRING),
    ([1, None, 2**40, -3], pa.int64()),
    ([5, 6], pa.int64()),
    ([None], pa.int64()),
    ([1.5, None, 2, -0.0], pa.float64()),
    ([0.1, 1e300, float("inf")], pa.float64()),
    ([datetime(2024, 1, 1, 1, 2, 3, 4), None, 1_700_000_000_000_000], STAMP),
    ([datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999)], STAMP),
    ([datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2)))], STAMP),
    ([1_700_000_000_000_000, 0], STAMP),
    ([None, None, None], STAMP),
]


def _reference(values: list[Any], kind: pa.DataType) -> pa.Array:
    if kind == STRING:
        values = [v.decode() if isinstance(v, bytes) else v for v in values]
    return pa.array(values, type=kind)


@pytest.mark.parametrize(("values", "kind"), CASES)
def test_same_array_as_pyarrow(values: list[Any], kind: pa.DataType) -> None:
    built = column(values, kind)
    built.validate(full=True)
    assert built.equals(_reference(values, kind))
    assert column(tuple(values), kind).equals(built)  # rows transposed by zip() come as tuples


@pytest.mark.parametrize("values", [[b"\xff"], ["ok", b"\xc3"], [b"ok", None, b"\xed\xa0\x80"]])
def test_bytes_that_are_not_utf8_are_refused(values: list[Any]) -> None:
    with pytest.raises(pa.ArrowInvalid):
        column(values, STRING)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ([{"a": 1}], pa.int64()),
        (["5"], pa.int64()),
        ([True], pa.int64()),
        ([2**63], pa.int64()),
        ([2**70], pa.int64()),
        (["1.5"], pa.float64()),
        (["2024-01-01"], STAMP),
        ([2**70], STAMP),
    ],
)
def test_values_pyarrow_refuses_are_refused(values: list[Any], kind: pa.DataType) -> None:
    with pytest.raises((TypeError, OverflowError, pa.ArrowInvalid)):
        pa.array(values, type=kind)
    with pytest.raises((TypeError, OverflowError)):
        column(values, kind)


def test_booleans_mask_a_table() -> None:
    table = pa.table({"n": [1, 2, 3, 4, 5, 6, 7, 8, 9]})
    keep = np.array([True, False, True, True, False, False, False, True, True])
    assert table.filter(booleans(keep))["n"].to_pylist() == [1, 3, 4, 8, 9]


def test_ingesting_never_imports_pandas(tmp_path: Path) -> None:
    # pyarrow.array (and Schema.empty_table) import pandas, about 0.3 s of CPU, on first use: every
    # ingest and every worker would pay it. Covers the parse, a worker's spool hand-over and the writer.
    path = tmp_path / "logs.jsonl"
    line = (
        b'{"request":{"messages":[{"role":"user","content":"hi %d"}]},"response":{"choices":[{"message":'
        b'{"role":"assistant","content":"yo"}}]},"timestamp":1700000000}\n'
    )
    path.write_bytes(b"".join(line % (i % 40) for i in range(60)) + b"{broken\n")
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from connectors import ReadContext\n"
        "from flywheel.ingest import sharding\n"
        "from flywheel.ingest import ingest_paths\n"
        "from flywheel.store.db import Warehouse\n"
        f"path, spool = Path({str(path)!r}), Path({str(tmp_path)!r})\n"
        "shard = next(sharding.plan_shards(path))\n"
        "job = (str(path), 'openai', ReadContext('w'), shard, 100)\n"
        "spooled = sharding._parse_shard_to_spool(job, spool)\n"
        "assert sum(sharding._unspool(s).interactions.num_rows for s in spooled) == 40\n"
        "report = ingest_paths(Warehouse(spool / 'w.duckdb'), [path], workload_id='w', batch_size=25)\n"
        "assert (report.total('ingested'), report.total('duplicates')) == (40, 20), report.as_dict()\n"
        "assert 'pandas' not in sys.modules\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", script], check=True, cwd=root, timeout=120)
