"""The whole loop through Prefect on a small demo workload, then an idle re-run and a retrain check."""

from pathlib import Path

import duckdb
import pytest
import yaml

from flywheel.demo import write_demo_setup

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("flow-home")
    config_path, _ = write_demo_setup(home, seed=3, size=160)
    config = yaml.safe_load(config_path.read_text())
    config["workloads"] = [w for w in config["workloads"] if w["id"] == "support-routing"]
    config["workloads"][0]["students"] = [
        {"name": "scratch-tiny", "kind": "scratch", "size": "tiny", "epochs": 2}
    ]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return home, config_path


def _runs(home: Path) -> list[tuple]:
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute("SELECT flow, status FROM flywheel_runs ORDER BY started_at").fetchall()
    finally:
        con.close()


def test_full_turn_then_idle_rerun_then_retrain_check(
    prefect_harness: None, small_demo: tuple[Path, Path]
) -> None:
    from prefect.client.orchestration import get_client

    from flows.flywheel_flow import flywheel_loop
    from flows.retrain_check import retrain_check

    home, config = small_demo
    first = flywheel_loop("support-routing", str(config), str(home))
    assert first["records_in"] > 160
    assert first["decision"] in ("promote", "promote_partial", "reject", "insufficient_eval")
    assert first["metric"] == "accuracy"
    assert first["teacher_score"] is not None
    assert set(first["seconds"]) == {"ingest", "curate", "label", "train", "evaluate", "costs"}

    second = flywheel_loop("support-routing", str(config), str(home))
    assert second["snapshot_id"] == first["snapshot_id"]  # no new data: same snapshot
    assert second["decision"] == "skipped"  # nothing retrained, nothing to judge
    assert second["seconds"]["train"] < 5
    # The idle turn still says who serves and with what scores (the ones that promoted it).
    assert second["champion"] == first["champion"]
    if first["decision"] == "promote":
        assert (second["student_score"], second["teacher_score"]) == (
            first["student_score"], first["teacher_score"]
        )  # fmt: skip

    check = retrain_check("support-routing", str(config), str(home))
    assert check["reasons"] and "trigger" in check
    if first["decision"] == "promote":
        assert check["trigger"] is False and check["reasons"] == ["no_trigger"]

    assert [status for _, status in _runs(home)].count("completed") >= 3

    import asyncio

    async def artifact_keys() -> set[str]:
        async with get_client() as client:
            return {a.key for a in await client.read_artifacts() if a.key}

    assert "flywheel-support-routing" in asyncio.run(artifact_keys())


def test_second_run_of_the_same_workload_refuses_clearly(tmp_path: Path) -> None:
    from flywheel.loop import WorkloadBusy, workload_lock

    with (
        workload_lock(tmp_path, "w"),
        pytest.raises(WorkloadBusy, match="in progress"),
        workload_lock(tmp_path, "w"),
    ):
        pass
