"""A configured source that matches no file is a failed ingest task naming its path, not a pass."""

from pathlib import Path

import duckdb
import pytest
import yaml

from flywheel.demo import write_demo_setup


def _config_with_a_missing_source(home: Path) -> Path:
    config_path, _ = write_demo_setup(home, seed=3, size=40)
    config = yaml.safe_load(config_path.read_text())
    config["workloads"] = [w for w in config["workloads"] if w["id"] == "support-routing"]
    config["workloads"][0]["sources"].append({"path": "not-delivered/*.jsonl", "format": "openai"})
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return config_path


def test_missing_source_fails_the_stage_after_ingesting_the_others(tmp_path: Path) -> None:
    from flywheel.loop import Loop, SourceMissing, ingest_stage

    config_path = _config_with_a_missing_source(tmp_path)
    loop = Loop.open(str(config_path), str(tmp_path))
    with pytest.raises(SourceMissing, match=r"not-delivered/\*\.jsonl: matches no files"):
        ingest_stage(loop, "support-routing")
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True)
    try:
        (count,) = con.execute("SELECT count(*) FROM interactions").fetchone() or (0,)
    finally:
        con.close()
    assert count > 30  # the source that exists is in: nothing is lost to the missing one


def test_missing_source_is_a_failed_prefect_task(tmp_path: Path, prefect_harness: None) -> None:
    from prefect import flow

    from flows.tasks import ingest_task
    from flywheel.loop import SourceMissing

    config_path = _config_with_a_missing_source(tmp_path)

    @flow
    def just_ingest() -> object:
        return ingest_task.with_options(retries=0)(
            str(config_path), str(tmp_path), "support-routing", return_state=True
        )

    state = just_ingest(return_state=True)
    assert state.is_failed()
    with pytest.raises(SourceMissing, match=r"not-delivered/\*\.jsonl: matches no files"):
        state.result()
