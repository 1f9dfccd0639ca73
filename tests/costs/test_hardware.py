from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from flywheel.costs import (
    hardware_profile,
    load_hardware_profiles,
    serving_cost_per_1k,
    training_cost_usd,
    training_ledger_row,
)
from flywheel.evaluate.runner import evaluate_predictors
from flywheel.hardware_profiles import DEFAULT_PROFILE, usd_per_hour
from flywheel.store.db import Warehouse


def test_one_home_for_the_profiles_and_their_default() -> None:
    profiles = load_hardware_profiles()
    assert profiles[DEFAULT_PROFILE].usd_per_hour == usd_per_hour(DEFAULT_PROFILE) == 0.10
    assert profiles[DEFAULT_PROFILE].description
    # evaluation, the ledger and serving read the same default: no rate is restated in another module
    assert evaluate_predictors.__kwdefaults__["hardware_usd_per_hour"] is None


def test_unknown_profile_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown hardware profile 'tpu'.*cpu-2core"):
        hardware_profile("tpu")


def test_bad_profile_file_names_file_and_profile(tmp_path: Path) -> None:
    path = tmp_path / "hw.yaml"
    path.write_text("cpu: {usd_per_hour: cheap}\n")
    with pytest.raises(ValueError, match=r"hw.yaml: profile 'cpu' needs a numeric usd_per_hour"):
        load_hardware_profiles(path)


def test_serving_cost_divides_the_hourly_rate_by_measured_throughput() -> None:
    # 50 tokens at 100 tokens/s: 0.5 s of a $0.36/h machine per request -> $0.05 per 1k requests.
    assert serving_cost_per_1k(0.36, 100.0, 50.0) == pytest.approx(0.05)
    assert serving_cost_per_1k(0.36, None, 50.0) is None
    assert serving_cost_per_1k(0.36, 0.0, 50.0) is None
    assert serving_cost_per_1k(0.36, 100.0, None) is None


def test_training_cost_is_wall_time_times_rate() -> None:
    assert training_cost_usd(1800, 1.01) == pytest.approx(0.505)
    with pytest.raises(ValueError):
        training_cost_usd(-1, 1.0)


def test_training_ledger_row_is_idempotent_and_replaces_the_wall_time_estimate(fixture_copy: Path) -> None:
    warehouse = Warehouse(fixture_copy)
    model_id = "support/tiny/v2"  # the fixture trained it without a ledger row
    row = training_ledger_row(
        model_id=model_id,
        workload_id="support",
        run_id="train-9",
        train_seconds=7200,
        usd_per_hour=1.01,
        recorded_at=datetime(2026, 1, 19, 9),
    )
    columns = ", ".join(f'"{name}"' for name in row)  # "at" is a DuckDB keyword
    insert = (
        f"INSERT INTO cost_ledger ({columns}) VALUES ({', '.join('?' * len(row))}) ON CONFLICT DO NOTHING"
    )
    for _ in range(2):
        warehouse.write(lambda con: con.execute(insert, list(row.values())))
    sql = "SELECT basis, sum(usd) FROM v_cost_items WHERE ref = ? GROUP BY ALL"
    assert warehouse.read(lambda con: con.execute(sql, [model_id]).fetchall()) == [
        ("ledger", pytest.approx(2.02))
    ]
