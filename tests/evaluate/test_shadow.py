from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from flywheel.evaluate.shadow import ShadowPair, run_shadow, sample_pairs, shadow_evaluate
from flywheel.store.db import Warehouse
from tests.evaluate.helpers import classification_workload

DAY1, DAY2 = date(2026, 11, 1), date(2026, 11, 2)


def pair(i: int, day: date, student: str, teacher: str, model_id: str = "routing/s/1") -> ShadowPair:
    return ShadowPair(
        day=day,
        model_id=model_id,
        messages=[{"role": "user", "content": f"ticket {i}"}],
        student={"role": "assistant", "content": student},
        teacher={"role": "assistant", "content": teacher},
    )


def traffic() -> list[ShadowPair]:
    day1 = [pair(i, DAY1, "billing", "billing" if i % 4 else "refund") for i in range(40)]  # 30/40 agree
    day2 = [pair(i, DAY2, "refund", "refund") for i in range(10)]
    return day1 + day2


def test_shadow_metrics_per_day_against_the_teacher() -> None:
    rows = shadow_evaluate(traffic(), classification_workload(), n_resamples=200)
    accuracy = {(r.day, r.model_id): r.estimate for r in rows if r.estimate.metric == "accuracy"}
    day1 = accuracy[(DAY1, "routing/s/1")]
    assert (day1.value, day1.n) == (0.75, 40) and day1.ci_low < 0.75 < day1.ci_high
    assert accuracy[(DAY2, "routing/s/1")].value == 1.0


def test_sampling_is_deterministic_and_order_independent() -> None:
    pairs = traffic()
    kept = sample_pairs(pairs, 0.5)
    assert 0 < len(kept) < len(pairs)
    assert {p.key for p in sample_pairs(list(reversed(pairs)), 0.5)} == {p.key for p in kept}
    assert sample_pairs(pairs, 0.0) == [] and len(sample_pairs(pairs, 1.0)) == len(pairs)
    with pytest.raises(ValueError, match="sample rate"):
        sample_pairs(pairs, 1.5)


def test_stored_per_day_and_rerun_replaces(tmp_path: Path) -> None:
    warehouse = Warehouse(tmp_path / "w.duckdb")
    workload = classification_workload()
    run_shadow(warehouse, workload, traffic(), n_resamples=100)
    run_shadow(warehouse, workload, traffic(), n_resamples=100)

    def read(con):
        return con.execute(
            "SELECT day, metric, value, n FROM shadow_evaluations WHERE metric = 'accuracy' ORDER BY day"
        ).fetchall()

    assert warehouse.read(read) == [(DAY1, "accuracy", 0.75, 40), (DAY2, "accuracy", 1.0, 10)]
