"""Property tests: whatever a file holds, every connector yields exactly one item per input unit
(non-blank line, CSV/Parquet row, GENERATION observation or unparseable element) and raises nothing
but SourceError. Files mix valid records with random bytes, truncated JSON, wrong types, huge fields,
deep nesting, invalid UTF-8 and blank lines."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import REGISTRY, ReadContext, SourceError
from flywheel.records import Interaction, Rejected, canonical_dumps
from tests.connectors.factories import chat_request, completion, error_body, stream_chunks, tool_call

# PROP_EXAMPLES=2000 digs deeper by hand; the default keeps the suite quick.
SETTINGS = settings(
    max_examples=int(os.environ.get("PROP_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
BATCH_IDS = [f"r{i}" for i in range(6)]

text = st.text(max_size=40)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)


def dumps(value: Any) -> bytes:
    """json, not orjson: orjson refuses to write the 300-deep values the readers must survive."""
    return json.dumps(value, ensure_ascii=False).encode()


def nested(depth: int) -> Any:
    value: Any = "core"
    for _ in range(depth):
        value = [value]
    return value


# Values that stress the readers: deep nesting beyond what orjson can write back (254), huge strings.
odd_values = (
    json_values
    | st.sampled_from([300, 600]).map(nested)
    | st.integers(50_000, 300_000).map(lambda n: "x" * n)
)
responses = st.sampled_from(
    [
        completion("It is sunny."),
        completion(None, tool_calls=[tool_call()]),
        completion(None, tool_calls=[tool_call({"city": "Paris"})]),
        stream_chunks("chunked"),
        error_body(),
    ]
)


@st.composite
def requests(draw: st.DrawFn) -> dict:
    return chat_request(prompt=draw(text), tools=draw(st.booleans()))


@st.composite
def openai_docs(draw: st.DrawFn) -> dict:
    return {"request": draw(requests()), "response": draw(responses), "timestamp": 1_700_000_000}


@st.composite
def nvidia_docs(draw: st.DrawFn) -> dict:
    return {
        "timestamp": 1_715_000_000,
        "workload_id": "w",
        "client_id": draw(text),
        "request": draw(requests()),
        "response": draw(responses),
    }


@st.composite
def spool_docs(draw: st.DrawFn) -> dict:
    return {
        "flywheel_spool": 1,
        "id": draw(text),
        "ts": 1.5e9,
        "workload_id": "w",
        "request": draw(requests()),
        "response": draw(responses),
        "served_by": draw(st.sampled_from(["student", "teacher"])),
        "teacher_response": draw(st.none() | responses),
    }


@st.composite
def batch_docs(draw: st.DrawFn) -> dict:
    custom_id = draw(st.sampled_from([*BATCH_IDS, "unknown"]))
    status = draw(st.sampled_from([200, 400, 500]))
    return {
        "id": "batch_req",
        "custom_id": custom_id,
        "error": draw(st.none() | st.just({"code": "expired"})),
        "response": {"status_code": status, "request_id": "req", "body": draw(responses)},
    }


@st.composite
def langfuse_docs(draw: st.DrawFn) -> dict:
    return {
        "id": draw(text),
        "traceId": "t",
        "type": draw(st.sampled_from(["GENERATION", "SPAN", "EVENT", "generation"])),
        "startTime": "2024-01-01T00:00:00Z",
        "endTime": "2024-01-01T00:00:01Z",
        "model": "m",
        "input": draw(
            st.sampled_from(
                ["hi", [{"role": "user", "content": "q"}], {"messages": [{"role": "user", "content": "q"}]}]
            )
        ),
        "output": draw(st.sampled_from(["yo", {"role": "assistant", "content": "a"}, completion("c")])),
        "usage": {"input": 3, "output": 4},
        "metadata": {"workload_id": "w"},
    }


def paths_of(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths_of(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths_of(child, (*prefix, index))


@st.composite
def mutated(draw: st.DrawFn, docs: st.SearchStrategy[dict]) -> dict:
    """A valid document with one value (anywhere) replaced by a random one, or one key deleted."""
    doc = orjson.loads(orjson.dumps(draw(docs)))
    path = draw(st.sampled_from([p for p in paths_of(doc) if p]))
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(odd_values)
    return doc


@st.composite
def lines_of(draw: st.DrawFn, docs: st.SearchStrategy[dict]) -> list[bytes]:
    """One line per unit (possibly blank); never contains a newline itself."""
    valid = docs.map(orjson.dumps)
    kinds = st.one_of(
        valid,
        mutated(docs).map(dumps),
        st.tuples(valid, st.integers(1, 10_000)).map(lambda t: t[0][: t[1] % len(t[0])]),  # truncated
        st.tuples(valid, st.integers(0, 10_000)).map(
            lambda t: t[0][: t[1] % len(t[0])] + b"\xff\xfe" + t[0][t[1] % len(t[0]) :]
        ),
        st.binary(max_size=120),
        st.sampled_from([b"", b"   ", b"\t", b"[" * 2000, b"{" * 50, b"null", b"[1, 2]", b'"text"']),
        json_values.map(dumps),
    )
    return [line.replace(b"\n", b" ") for line in draw(st.lists(kinds, max_size=8))]


@contextmanager
def workdir(base: Path) -> Iterator[Path]:
    """A fresh folder under the test's tmp_path for each example."""
    with tempfile.TemporaryDirectory(dir=base) as name:
        yield Path(name)


def write(path: Path, lines: list[bytes], gz: bool, trailing: bool) -> bytes:
    data = b"\n".join(lines) + (b"\n" if trailing and lines else b"")
    if not gz and data.startswith(b"\x1f\x8b"):
        data = b"\n" + data  # the gzip magic makes any file gzip (by design); a blank line is no unit
    path.write_bytes(gzip.compress(data) if gz else data)
    return data


def read_all(name: str, path: Path, **mapping: Any) -> list[Interaction | Rejected]:
    items = list(REGISTRY[name].read(path, ReadContext(workload_id="w", mapping=mapping)))
    for item in items:
        assert isinstance(item, Interaction | Rejected)
        assert item.source_ref.startswith(str(path))
        if isinstance(item, Interaction):
            assert len(item.id) == 64  # storable: canonical JSON of request and response works
            canonical_dumps(item.metadata)
    assert len({item.source_ref for item in items}) == len(items), "one item per unit, each its own ref"
    return items


def non_blank(data: bytes) -> int:
    return sum(1 for line in data.split(b"\n") if line.strip())


def langfuse_unit(value: Any) -> bool:
    """Not a unit: a well-formed observation of another type (SPAN, EVENT...)."""
    kind = value.get("type") if isinstance(value, dict) else None
    return not (isinstance(kind, str) and kind.upper() != "GENERATION")


def langfuse_line_units(data: bytes) -> int:
    count = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            line.decode("utf-8")
            value = orjson.loads(line)
        except (UnicodeDecodeError, orjson.JSONDecodeError):
            value = None
        count += langfuse_unit(value)
    return count


JSONL_CASES: dict[str, Callable[[], st.SearchStrategy[dict]]] = {
    "openai": openai_docs,
    "nvidia": nvidia_docs,
    "spool": spool_docs,
    "openai_batch": batch_docs,
}


@pytest.mark.parametrize("name", sorted(JSONL_CASES))
def test_jsonl_connectors_yield_one_item_per_non_blank_line(name: str, tmp_path: Path) -> None:
    @SETTINGS
    @given(lines=lines_of(JSONL_CASES[name]()), gz=st.booleans(), trailing=st.booleans())
    def check(lines: list[bytes], gz: bool, trailing: bool) -> None:
        with workdir(tmp_path) as tmp:
            if name == "openai_batch":
                inputs = [
                    {"custom_id": i, "method": "POST", "url": "/v1/chat/completions", "body": chat_request()}
                    for i in BATCH_IDS
                ]
                write(
                    tmp / "batch_input.jsonl",
                    [b"garbage", *map(orjson.dumps, inputs), b'{"custom_id": "r9"'],
                    False,
                    True,
                )
            path = tmp / ("batch_output.jsonl" + (".gz" if gz else ""))
            data = write(path, lines, gz, trailing)
            assert len(read_all(name, path)) == non_blank(data)

    check()


def test_langfuse_jsonl_counts_generations_and_unparseable_lines(tmp_path: Path) -> None:
    @SETTINGS
    @given(lines=lines_of(langfuse_docs()), gz=st.booleans())
    def check(lines: list[bytes], gz: bool) -> None:
        with workdir(tmp_path) as tmp:
            path = tmp / ("obs.jsonl" + (".gz" if gz else ""))
            data = write(path, lines, gz, True)
            assert len(read_all("langfuse", path)) == langfuse_line_units(data)

    check()


def test_langfuse_json_array_counts_generation_elements(tmp_path: Path) -> None:
    elements = st.lists(langfuse_docs() | mutated(langfuse_docs()) | json_values, max_size=8)

    @SETTINGS
    @given(elements=elements, noise=st.none() | st.binary(max_size=40))
    def check(elements: list[Any], noise: bytes | None) -> None:
        with workdir(tmp_path) as tmp:
            path = tmp / "obs.json"
            data = dumps(elements)
            path.write_bytes(data if noise is None else b"[" + noise)
            try:
                items = read_all("langfuse", path)
            except SourceError:
                assert noise is not None  # only a broken array may be refused as a whole
                return
            expected = elements if noise is None else orjson.loads(b"[" + noise)
            assert len(items) == sum(langfuse_unit(e) for e in expected)

    check()


cells = (
    st.none()
    | text
    | st.integers(50_000, 200_000).map(lambda n: "y" * n)
    | json_values.map(lambda v: orjson.dumps(v).decode())
)


def test_langfuse_parquet_counts_generation_rows(tmp_path: Path) -> None:
    @SETTINGS
    @given(
        rows=st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["GENERATION", "SPAN", "EVENT", None, ""]),
                    "input": cells,
                    "output": cells,
                    "model": st.none() | text,
                    "startTime": st.none() | text,
                    "metadata": cells,
                }
            ),
            max_size=8,
        )
    )
    def check(rows: list[dict]) -> None:
        with workdir(tmp_path) as tmp:
            path = tmp / "obs.parquet"
            schema = pa.schema(
                [(key, pa.string()) for key in ("type", "input", "output", "model", "startTime", "metadata")]
            )
            pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=3)
            assert len(read_all("langfuse", path)) == sum(langfuse_unit(r) for r in rows)

    check()


# CSV cells: quotes, delimiters, newlines, huge values and invalid UTF-8 (surrogate-escaped bytes).
csv_cells = (
    st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=30)
    | st.sampled_from(['a "quoted" ,text', "line\nbreak", "cr\r\nlf", "", " "])
    | st.binary(min_size=1, max_size=6).map(lambda b: b.decode("utf-8", "surrogateescape"))
    | st.integers(50_000, 200_000).map(lambda n: "z" * n)
)


def test_csv_yields_one_item_per_row(tmp_path: Path) -> None:
    @SETTINGS
    @given(rows=st.lists(st.lists(csv_cells, min_size=1, max_size=4), max_size=8), gz=st.booleans())
    def check(rows: list[list[str]], gz: bool) -> None:
        buffer = io.StringIO()
        csv.writer(buffer).writerows([["prompt", "response", "label"], *rows])
        with workdir(tmp_path) as tmp:
            path = tmp / ("t.csv" + (".gz" if gz else ""))
            data = buffer.getvalue().encode("utf-8", "surrogateescape")
            path.write_bytes(gzip.compress(data) if gz else data)
            assert len(read_all("csv", path)) == len(rows)

    check()


def test_csv_survives_arbitrary_bytes(tmp_path: Path) -> None:
    @SETTINGS
    @given(noise=st.binary(max_size=300))
    def check(noise: bytes) -> None:
        with workdir(tmp_path) as tmp:
            path = tmp / "t.csv"
            path.write_bytes(b"prompt,response\n" + noise)
            items = read_all("csv", path)
            reader = csv.reader(io.StringIO(noise.decode("utf-8", "surrogateescape"), newline=""))
            rows = 0
            while True:
                try:
                    rows += bool(next(reader))
                except StopIteration:
                    break
                except csv.Error:
                    rows += 1
            assert len(items) == rows

    check()


def test_parquet_table_yields_one_item_per_row(tmp_path: Path) -> None:
    @SETTINGS
    @given(
        rows=st.lists(
            st.fixed_dictionaries(
                {"prompt": cells, "response": cells, "label": st.none() | st.integers(-5, 5)}
            ),
            max_size=10,
        )
    )
    def check(rows: list[dict]) -> None:
        with workdir(tmp_path) as tmp:
            path = tmp / "t.parquet"
            pq.write_table(
                pa.Table.from_pylist(
                    rows,
                    schema=pa.schema(
                        [("prompt", pa.string()), ("response", pa.string()), ("label", pa.int64())]
                    ),
                ),
                path,
                row_group_size=4,
            )
            assert len(read_all("parquet", path, label="label")) == len(rows)

    check()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_empty_and_garbage_files(name: str, tmp_path: Path) -> None:
    suffix = {"csv": ".csv", "parquet": ".parquet", "langfuse": ".json"}.get(name, ".jsonl")
    with workdir(tmp_path) as tmp:
        if name == "openai_batch":  # its requests live in a sibling input file
            request = {
                "custom_id": "a",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": chat_request(),
            }
            write(tmp / "batch_input.jsonl", [orjson.dumps(request)], False, True)
        empty = tmp / f"empty{suffix}"
        empty.write_bytes(b"")
        try:
            assert read_all(name, empty) == []
        except SourceError:
            assert name == "parquet"  # a zero-byte file is not Parquet
        garbage = tmp / f"garbage{suffix}"
        garbage.write_bytes(bytes(range(256)) * 64)
        try:
            items = read_all(name, garbage)
        except SourceError:
            return
        assert all(isinstance(item, Rejected) for item in items)


def test_line_over_the_limit_is_one_rejection(tmp_path: Path) -> None:
    with workdir(tmp_path) as tmp:
        path = tmp / "big.jsonl"
        path.write_bytes(
            b'{"request": "'
            + b"x" * (17 * 1024 * 1024)
            + b'"}\n'
            + orjson.dumps({"request": chat_request(), "response": completion()})
        )
        for name in ("openai", "nvidia", "spool", "langfuse"):
            items = read_all(name, path)
            assert len(items) == 2 and items[0].reason == "line_too_long"
