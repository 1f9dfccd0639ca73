"""The same loop (ingest -> curate -> label -> train -> evaluate -> costs) on a DuckDB file and on a
DuckLake (SQLite catalog always; Postgres where Debian's is installed): every stage's outcome and every
table's row count must match, since the lake runs the same SQL."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.demo import write_demo_setup
from flywheel.loop import (
    Loop,
    costs_stage,
    curate_stage,
    evaluate_stage,
    ingest_stage,
    label_stage,
    train_stage,
)
from flywheel.store.lake import LakeWarehouse

pytestmark = pytest.mark.slow
WORKLOAD = "support-routing"
TABLES = (
    "interactions", "quarantine", "ingest_batches", "curation_verdicts", "dataset_snapshots",
    "snapshot_examples", "labels", "label_runs", "models", "evaluations", "eval_runs", "promotions",
    "cost_assumptions", "token_counts", "model_prices",
)  # fmt: skip
# Stage fields that name a run or a clock, not an outcome.
VOLATILE = {"run_id", "seconds", "timings", "elapsed_s", "batch_id"}
MODEL_CLOCK = re.compile(r"v\d{8}T\d{6}Z")
EVALUATE_KEYS = (
    "decision", "winner", "champion", "reference", "primary_metric", "n_examples", "skipped", "results",
    "slice_results",
)  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Demo traffic (with its duplicates, errors and malformed lines) for one workload, one tiny student."""
    home = tmp_path_factory.mktemp("lake-demo")
    config_path, _ = write_demo_setup(home, seed=3, size=160)
    config = yaml.safe_load(config_path.read_text())
    config["workloads"] = [w for w in config["workloads"] if w["id"] == WORKLOAD]
    config["workloads"][0]["students"] = [
        {"name": "scratch-tiny", "kind": "scratch", "size": "tiny", "epochs": 1}
    ]
    return config


def _turn(demo: dict[str, Any], home: Path, warehouse: Any) -> tuple[Loop, dict[str, Any]]:
    home.mkdir(parents=True, exist_ok=True)
    config_path = home / "flywheel.yaml"
    config_path.write_text(
        yaml.safe_dump(demo | {"home": str(home), "warehouse": warehouse}, sort_keys=False)
    )
    loop = Loop.open(config_path)
    stages: dict[str, Any] = {
        "ingest": ingest_stage(loop, WORKLOAD),
        "curate": curate_stage(loop, WORKLOAD),
        "label": label_stage(loop, WORKLOAD),
    }
    # Training and evaluation also report wall time, speed and what they imply (hardware cost per
    # 1k requests, the training bill): those differ run to run on any backend, so compare the rest.
    trained = train_stage(loop, WORKLOAD)
    stages["train"] = {k: trained[k] for k in ("snapshot_id", "train_examples", "val_examples", "trained")}
    stages["train"]["params"] = [c["params"] for c in trained["candidates"]]
    report = evaluate_stage(loop, WORKLOAD, reference="teacher", resamples=200).as_dict()
    stages["evaluate"] = {k: report[k] for k in EVALUATE_KEYS}
    costs = costs_stage(loop, WORKLOAD)["workloads"][WORKLOAD]
    stages["costs"] = {k: costs[k] for k in ("requests", "teacher_usd", "token_methods", "unpriced_models")}
    stages["rows"] = loop.warehouse.read(
        lambda con: {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    )
    return loop, _stable(stages)


def _stable(value: Any) -> Any:
    """The outcome without run ids, clocks and paths, with floats rounded (Parquet vs DuckDB sums)."""
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE and not str(k).endswith("_at")}
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    if isinstance(value, float):
        return round(value, 9)
    if isinstance(value, str) and value.startswith("/"):
        return "<path>"  # each run has its own home
    if isinstance(value, str):
        value = MODEL_CLOCK.sub("v<clock>", value)  # model ids carry their training time
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return "<sha256>"
    return value


@pytest.fixture(scope="module")
def on_file(demo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return _turn(demo, tmp_path_factory.mktemp("file-home"), "warehouse.duckdb")[1]


@pytest.mark.parametrize("catalog", ["sqlite", "postgres"])
def test_the_loop_on_a_lake_matches_the_loop_on_a_file(
    lake_extensions: None,  # first: without the extensions, skip before running the file's loop
    catalog: str,
    demo: dict[str, Any],
    on_file: dict[str, Any],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:
    target = (
        f"postgres:{request.getfixturevalue('postgres')('loop')}"
        if catalog == "postgres"
        else "sqlite:lake.sqlite"
    )
    section = {"backend": "ducklake", "catalog": target, "data_path": "lake-data"}
    loop, on_lake = _turn(demo, tmp_path / "home", section)

    assert isinstance(loop.warehouse, LakeWarehouse)
    assert on_file["rows"]["interactions"] > 100 and on_file["rows"]["quarantine"] > 0
    assert on_file["evaluate"]["decision"] in ("promote", "promote_partial", "reject", "insufficient_eval")
    for stage in ("ingest", "curate", "label", "train", "evaluate", "costs", "rows"):
        assert on_lake[stage] == on_file[stage], stage
    assert list((tmp_path / "home/lake-data").rglob("*.parquet")), "the lake's rows live in Parquet files"
    assert not list(tmp_path.rglob("*.duckdb")), "no DuckDB file was written beside the lake"
    if catalog == "sqlite":
        assert (tmp_path / "home/lake.sqlite").exists()
