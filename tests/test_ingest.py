from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flywheel.ingest import ingest_paths
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse
from tests.conftest import chat_record, write_jsonl


def _count(warehouse: Warehouse, table: str) -> int:
    return warehouse.read(lambda con: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_accounting_and_idempotency(tmp_path: Path) -> None:
    records = [chat_record(i) for i in range(50)]
    lines = [*records, records[3], b"{not json", b"\xff\xfe\xfd", b"[1, 2]", chat_record(99, response=None)]
    path = write_jsonl(tmp_path / "logs.jsonl", lines)
    warehouse = Warehouse(tmp_path / "w.duckdb")

    first = ingest_paths(warehouse, [path], workload_id="w").as_dict()
    assert first["read"] == 55
    assert (first["ingested"], first["duplicates"], first["quarantined"]) == (50, 1, 4)
    assert first["reasons"] == {
        "truncated_json": 1,
        "invalid_utf8": 1,
        "not_an_object": 1,
        "missing_response": 1,
    }

    second = ingest_paths(warehouse, [path], workload_id="w").as_dict()
    assert (second["read"], second["ingested"], second["duplicates"], second["quarantined"]) == (55, 0, 51, 4)
    assert _count(warehouse, "interactions") == 50
    assert _count(warehouse, "quarantine") == 4
    assert _count(warehouse, "ingest_batches") == 2


def test_quarantine_keeps_file_line_reason_and_raw(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [chat_record(1), b'{"request": {"messages": []}}'])
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [path], workload_id="w")
    row = warehouse.read(
        lambda con: con.execute("SELECT source_ref, reason, raw, stage FROM quarantine").fetchone()
    )
    assert row[0] == f"{path}:2"
    assert row[1] == "bad_request"
    assert row[2].startswith('{"request"')
    assert row[3] == "ingest"


def test_error_responses_are_interactions_with_error_status(tmp_path: Path) -> None:
    error = chat_record(1, response={"error": {"message": "rate limited", "code": 429}})
    path = write_jsonl(tmp_path / "logs.jsonl", [error, chat_record(2)])
    warehouse = Warehouse(tmp_path / "w.duckdb")
    ingest_paths(warehouse, [path], workload_id="w")
    statuses = warehouse.read(
        lambda con: con.execute("SELECT status FROM interactions ORDER BY ts").fetchall()
    )
    assert [s for (s,) in statuses] == ["error", "ok"]


def test_cost_from_price_catalog_and_workload_required(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [chat_record(1)])
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = ingest_paths(warehouse, [path], workload_id=None).as_dict()
    assert report["reasons"] == {"missing_workload_id": 1}
    ingest_paths(warehouse, [path], workload_id="w", price_fn=PriceCatalog.load().cost)
    cost = warehouse.read(lambda con: con.execute("SELECT cost_usd FROM interactions").fetchone()[0])
    assert abs(cost - (10 * 0.15 + 1 * 0.60) / 1e6) < 1e-12


def test_interrupted_ingest_rerun_has_no_gaps_or_duplicates(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", [chat_record(i) for i in range(100)])
    warehouse = Warehouse(tmp_path / "w.duckdb")
    calls = {"n": 0}

    def crash_after_two_batches(_: int) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_paths(warehouse, [path], workload_id="w", batch_size=30, progress=crash_after_two_batches)
    assert _count(warehouse, "interactions") == 60
    report = ingest_paths(warehouse, [path], workload_id="w", batch_size=30).as_dict()
    assert (report["ingested"], report["duplicates"]) == (40, 60)
    assert _count(warehouse, "interactions") == 100


def test_missing_and_undetectable_files_are_reported_not_raised(tmp_path: Path) -> None:
    garbage = tmp_path / "blob.bin"
    garbage.write_bytes(bytes(range(256)) * 10)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    report = ingest_paths(warehouse, [tmp_path / "missing.jsonl"], workload_id="w")
    assert report.nothing_read and "missing.jsonl" in report.errors[0]
    report = ingest_paths(warehouse, [garbage], workload_id="w")
    assert report.nothing_read and "format" in report.errors[0]


LINE = st.one_of(
    st.integers(min_value=0, max_value=30).map(lambda i: ("valid", i)),
    st.binary(min_size=1, max_size=60).map(lambda b: ("bytes", b)),
    st.integers(min_value=0, max_value=30).map(lambda i: ("truncated", i)),
    st.sampled_from(["[]", "null", "42", '"s"', '{"request": 1}', '{"request": {"messages": [{}]}}']).map(
        lambda s: ("wrong", s)
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(LINE, min_size=0, max_size=40))
def test_every_line_is_accounted_for(tmp_path_factory, lines: list[tuple[str, object]]) -> None:
    tmp = tmp_path_factory.mktemp("prop")
    encoded = []
    for kind, value in lines:
        if kind == "valid":
            encoded.append(orjson.dumps(chat_record(value)))
        elif kind == "truncated":
            encoded.append(orjson.dumps(chat_record(value))[:-7])
        elif kind == "wrong":
            encoded.append(value.encode())
        else:
            encoded.append(value.replace(b"\n", b" ").replace(b"\r", b" "))
    path = tmp / "logs.jsonl"
    path.write_bytes(b"\n".join(encoded) + b"\n")
    warehouse = Warehouse(tmp / "w.duckdb")
    report = ingest_paths(warehouse, [path], workload_id="w", fmt="openai").as_dict()
    non_blank = sum(1 for line in encoded if line.strip())
    assert report["read"] == non_blank
    assert report["read"] == report["ingested"] + report["duplicates"] + report["quarantined"]
    valid_ids = {value for kind, value in lines if kind == "valid"}
    assert report["ingested"] == len(valid_ids)
    if path.stat().st_size and non_blank:
        assert _count(warehouse, "interactions") == len(valid_ids)


def test_feedback_too_deep_to_store_is_quarantined_not_a_crash(tmp_path: Path) -> None:
    deep = b"[" * 300 + b"]" * 300  # orjson reads 1024 levels but writes 254
    line = orjson.dumps(chat_record(1))[:-1] + b', "feedback": ' + deep + b"}"
    path = write_jsonl(tmp_path / "logs.jsonl", [line, chat_record(2)])
    report = ingest_paths(Warehouse(tmp_path / "w.duckdb"), [path], workload_id="w").as_dict()
    assert (report["ingested"], report["quarantined"], report["reasons"]) == (1, 1, {"unserializable": 1})


def test_odd_models_and_token_counts_are_stored_not_a_crash(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 2**40, "completion_tokens": 1e30}  # beyond the INTEGER columns
    odd = [
        chat_record(1, response={**chat_record(1)["response"], "model": [["x"]]}),
        chat_record(
            2,
            request={"model": {"a": 1}, "messages": [{"role": "user", "content": "b"}]},
            response={k: v for k, v in chat_record(2)["response"].items() if k != "model"},
        ),
        chat_record(3, response={**chat_record(3)["response"], "model": 7, "usage": usage}),
    ]
    path = write_jsonl(tmp_path / "logs.jsonl", odd)
    warehouse = Warehouse(tmp_path / "w.duckdb")
    assert ingest_paths(warehouse, [path], workload_id="w").as_dict()["ingested"] == 3
    rows = warehouse.read(
        lambda con: con.execute(
            "SELECT model, prompt_tokens, completion_tokens FROM interactions ORDER BY ts"
        ).fetchall()
    )
    assert rows == [("gpt-4o-mini", 10, 1), (None, 10, 1), ("gpt-4o-mini", None, None)]
