"""Incremental curation: a curate prepares and row-checks only interactions no earlier curate prepared
(under the same config and template, with the same feedback/metadata/gold), and gives exactly what a
curate that prepares every row again gives."""

import shutil
from pathlib import Path

import pytest

from flywheel.config import WorkloadConfig, load_config
from flywheel.curate import CurationReport, curate_workload
from flywheel.demo import demo_config_path, generate_demo_traffic
from flywheel.forget import ForgetRequest, forget
from flywheel.ingest import ingest_paths
from flywheel.store.db import Warehouse

WORKLOAD = "support-routing"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Demo traffic of two days (other seeds): history, then new records."""
    out = tmp_path_factory.mktemp("incremental")
    generate_demo_traffic(out / "history", seed=11, size=500)
    generate_demo_traffic(out / "new", seed=12, size=150)
    return out / "history" / f"{WORKLOAD}.jsonl", out / "new" / f"{WORKLOAD}.jsonl"


def workload(**curation: object) -> WorkloadConfig:
    config = load_config(demo_config_path()).workload(WORKLOAD)
    return config.model_copy(
        update={"curation": config.curation.model_copy(update={"export": [], **curation})}
    )


def ingest(home: Path, path: Path) -> int:
    return ingest_paths(
        Warehouse(home / "warehouse.duckdb"), [path], workload_id=WORKLOAD, fmt="openai"
    ).total("ingested")


def curate(home: Path, config: WorkloadConfig) -> CurationReport:
    return curate_workload(Warehouse(home / "warehouse.duckdb"), config, home=home)


def verdicts(home: Path, run_id: str) -> list[tuple]:
    return Warehouse(home / "warehouse.duckdb").read(
        lambda con: con.execute(
            "SELECT interaction_id, keep, reason, detail, dup_group FROM curation_verdicts WHERE run_id = ? "
            "ORDER BY interaction_id",
            [run_id],
        ).fetchall()
    )


def outcome(home: Path, report: CurationReport) -> tuple:
    return (report.n_in, report.rejected, report.splits, report.content_hash, report.pii, report.dedup,
            report.tokens_per_example, report.label_proposal, verdicts(home, report.run_id))  # fmt: skip


def test_second_curate_prepares_only_new_rows_and_equals_a_full_one(tmp_path: Path, logs) -> None:
    history, new = logs
    home, config = tmp_path / "home", workload()
    n_history = ingest(home, history)
    first = curate(home, config)
    assert first.prepared == {"stored": 0, "prepared": n_history}
    n_new = ingest(home, new)
    full_home = tmp_path / "full"
    shutil.copytree(home, full_home)
    Warehouse(full_home / "warehouse.duckdb").write(lambda con: con.execute("DELETE FROM curation_prepared"))
    incremental = curate(home, config)
    assert incremental.prepared == {"stored": n_history, "prepared": n_new}
    everything = curate(full_home, config)
    assert everything.prepared == {"stored": 0, "prepared": n_history + n_new}
    assert outcome(home, incremental) == outcome(full_home, everything)
    assert incremental.rejected.get("near_duplicate") and incremental.splits["eval"] > 0


def test_changed_feedback_config_or_forget_prepare_rows_again(tmp_path: Path, logs) -> None:
    history, _ = logs
    home, config = tmp_path / "home", workload()
    n = ingest(home, history)
    curate(home, config)
    warehouse = Warehouse(home / "warehouse.duckdb")
    [(changed,)] = warehouse.write(
        lambda con: con.execute(
            "UPDATE interactions SET feedback = '{\"rating\": -1}' WHERE id = (SELECT min(id) FROM "
            "interactions WHERE status = 'ok') RETURNING id"
        ).fetchall()
    )
    again = curate(home, config)
    assert again.prepared == {"stored": n - 1, "prepared": 1}  # only the row whose feedback changed
    stricter = curate(home, workload(max_input_tokens=50))
    assert stricter.prepared == {"stored": 0, "prepared": n}  # another config: every row again
    forget(warehouse, ForgetRequest(WORKLOAD, ids=[changed]), home)
    left = warehouse.read(lambda con: con.execute("SELECT count(*) FROM curation_prepared").fetchone()[0])
    assert left == n - 1
