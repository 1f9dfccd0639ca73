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
DEMO_WORKLOADS = ("support-routing", "order-extraction", "tool-assistant")  # each task's answer contract


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Demo traffic of two days (other seeds): history, then new records."""
    out = tmp_path_factory.mktemp("incremental")
    generate_demo_traffic(out / "history", seed=11, size=400)
    generate_demo_traffic(out / "new", seed=12, size=120)
    return out


def workload(workload_id: str = WORKLOAD, **curation: object) -> WorkloadConfig:
    config = load_config(demo_config_path()).workload(workload_id)
    curation = config.curation.model_copy(update={"export": [], **curation})
    return config.model_copy(update={"curation": curation})


def ingest(home: Path, path: Path, workload_id: str = WORKLOAD) -> int:
    warehouse = Warehouse(home / "warehouse.duckdb")
    return ingest_paths(warehouse, [path], workload_id=workload_id, fmt="openai").total("ingested")


def curate(home: Path, config: WorkloadConfig) -> CurationReport:
    return curate_workload(Warehouse(home / "warehouse.duckdb"), config, home=home)


def verdicts(home: Path, run_id: str) -> list[tuple]:
    return Warehouse(home / "warehouse.duckdb").read(
        lambda con: con.execute(
            "SELECT interaction_id, keep, reason, detail, dup_group FROM curation_verdicts "
            "WHERE run_id = ? ORDER BY interaction_id",
            [run_id],
        ).fetchall()
    )


def outcome(home: Path, report: CurationReport) -> tuple:
    return (report.n_in, report.rejected, report.splits, report.content_hash, report.pii, report.dedup,
            report.tokens_per_example, report.label_proposal, verdicts(home, report.run_id))  # fmt: skip


@pytest.mark.parametrize("workload_id", DEMO_WORKLOADS)
def test_second_curate_prepares_only_new_rows_and_equals_a_full_one(
    tmp_path: Path, demo: Path, workload_id: str
) -> None:
    home, config = tmp_path / "home", workload(workload_id)
    n_history = ingest(home, demo / "history" / f"{workload_id}.jsonl", workload_id)
    first = curate(home, config)
    assert first.prepared == {"stored": 0, "prepared": n_history}
    n_new = ingest(home, demo / "new" / f"{workload_id}.jsonl", workload_id)
    full_home = tmp_path / "full"
    shutil.copytree(home, full_home)
    Warehouse(full_home / "warehouse.duckdb").write(lambda con: con.execute("DELETE FROM curation_prepared"))
    incremental = curate(home, config)
    # new rows, plus any old row whose feedback the second ingest merged in (its input key changed)
    assert sum(incremental.prepared.values()) == n_history + n_new
    assert n_new <= incremental.prepared["prepared"] <= n_new + 5
    everything = curate(full_home, config)
    assert everything.prepared == {"stored": 0, "prepared": n_history + n_new}
    assert outcome(home, incremental) == outcome(full_home, everything)
    assert incremental.splits["eval"] > 0 and incremental.n_out > 0


def test_changed_feedback_config_or_forget_prepare_rows_again(tmp_path: Path, demo: Path) -> None:
    home, config = tmp_path / "home", workload()
    n = ingest(home, demo / "history" / f"{WORKLOAD}.jsonl")
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
