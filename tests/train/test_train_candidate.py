"""train_candidate end to end on a tiny scratch student: artifacts, model card, registry, predictions."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from flywheel.store.db import Warehouse
from flywheel.train import load_student, train_candidate, train_workload
from tests.train.conftest import tiny_student

pytestmark = pytest.mark.slow


def test_scratch_candidate_is_saved_registered_and_answers(tmp_path: Path, routing, demo_workloads) -> None:
    train, val, evaluation = routing
    workload = demo_workloads["support-routing"]
    warehouse = Warehouse(tmp_path / "wh.duckdb")
    seen: list[tuple[str, int, int]] = []
    candidate = tiny_student(options={"postprocess": {"quantize": True}})
    trained = train_candidate(
        candidate,
        workload,
        train[:96],
        val,
        out_dir=tmp_path / "models",
        snapshot_id="support-routing.v1",
        warehouse=warehouse,
        progress=lambda name, done, total: seen.append((name, done, total)),
    )
    assert seen[-1] == ("scratch-tiny", 4, 4)
    assert trained.model_id.startswith("support-routing/scratch-tiny/v")
    assert trained.path.parent == tmp_path / "models" / "support-routing"
    assert (trained.path / "model.safetensors").exists() and (trained.path / "tokenizer.json").exists()
    manifest = orjson.loads((trained.path / "flywheel.json").read_bytes())
    assert manifest["snapshot_id"] == "support-routing.v1" and len(manifest["loss_curve"]) == 4
    card = (trained.path / "README.md").read_text()
    assert "## Loss curve" in card and "scratch" in card
    assert not (tmp_path / "models" / "support-routing" / ".runs" / "x").exists()

    [int8] = trained.variants
    assert int8.variant == "int8" and int8.size_bytes < trained.size_bytes
    rows = warehouse.read(
        lambda con: con.execute(
            "SELECT model_id, name, stage, params, snapshot_id FROM models ORDER BY name"
        ).fetchall()
    )
    assert [(r[1], r[2], r[4]) for r in rows] == [
        ("scratch-tiny", "candidate", "support-routing.v1"),
        ("scratch-tiny+int8", "candidate", "support-routing.v1"),
    ]
    steps = warehouse.read(
        lambda con: con.execute(
            "SELECT step, loss FROM training_steps WHERE model_id = ? ORDER BY step", [trained.model_id]
        ).fetchall()
    )
    assert [s for s, _ in steps] == [1, 2, 3, 4] and all(loss > 0 for _, loss in steps)

    student = load_student(int8.path)
    predictions = student.predict(evaluation[:3])
    assert len(predictions) == 3
    for prediction in predictions:
        assert prediction.message["role"] == "assistant" and isinstance(prediction.message["content"], str)
        assert 0.0 <= prediction.confidence <= 1.0
        assert (
            prediction.prompt_tokens > 0 and 1 <= prediction.completion_tokens <= manifest["max_new_tokens"]
        )


def test_train_workload_rejects_unknown_candidates(tmp_path: Path, routing, demo_workloads) -> None:
    from flywheel.config import ConfigError

    with pytest.raises(ConfigError, match="has no student 'nope'"):
        train_workload(
            demo_workloads["support-routing"],
            routing[0],
            routing[1],
            out_dir=tmp_path,
            snapshot_id=None,
            warehouse=None,
            candidates=["nope"],
        )


def test_same_seed_same_data_same_loss_curve(tmp_path: Path, routing, demo_workloads) -> None:
    train, _, _ = routing
    curves = []
    for run in range(2):
        trained = train_candidate(
            tiny_student(method="lora", options={"max_steps": 2, "val_examples": 0, "qlora": True}),
            demo_workloads["support-routing"],
            train[:16],
            [],
            out_dir=tmp_path / str(run),
            snapshot_id=None,
            warehouse=None,
            resume=False,
        )
        curves.append([row["loss"] for row in trained.loss_curve])
    assert curves[0] == curves[1]
    notes = orjson.loads((trained.path / "flywheel.json").read_bytes())["notes"]
    import torch

    if not torch.cuda.is_available():
        assert notes and "trained LoRA" in notes[0]  # QLoRA asked for, hardware said no: no crash
