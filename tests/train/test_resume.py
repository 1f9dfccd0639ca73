"""An interrupted training run continues from its last checkpoint instead of starting over."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.train import train_candidate
from tests.train.conftest import tiny_student

pytestmark = pytest.mark.slow


class Interrupted(Exception):
    pass


def test_interrupted_run_resumes_from_the_last_checkpoint(tmp_path: Path, routing, demo_workloads) -> None:
    train, val, _ = routing
    workload = demo_workloads["support-routing"]
    candidate = tiny_student(options={"max_steps": 5, "save_steps": 2, "val_examples": 0})
    kwargs = {"out_dir": tmp_path / "models", "snapshot_id": "s1", "warehouse": None, "seed": 1}

    def crash_after_three(name: str, done: int, total: int) -> None:
        if done == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_candidate(candidate, workload, train[:40], val, progress=crash_after_three, **kwargs)
    [run_dir] = (tmp_path / "models" / workload.id / ".runs").iterdir()
    assert sorted(p.name for p in (run_dir / "main").glob("checkpoint-*")) == ["checkpoint-2"]

    steps_seen: list[int] = []
    trained = train_candidate(
        candidate,
        workload,
        train[:40],
        val,
        progress=lambda n, done, total: steps_seen.append(done),
        **kwargs,
    )
    assert trained.resumed_from_step == 2
    assert steps_seen == [3, 4, 5]  # steps 1-2 were not trained again
    assert [row["step"] for row in trained.loss_curve] == [1, 2, 3, 4, 5]
    assert not run_dir.exists()  # checkpoints are dropped once the artifacts are saved
