"""`causal-lm` students start from any local path (or Hub id): here a saved scratch model."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.train import load_student, train_candidate
from flywheel.train.causal import GENERIC_CHAT_TEMPLATE
from tests.train.conftest import tiny_student

pytestmark = pytest.mark.slow


def test_local_base_without_chat_template_gets_lora_and_a_generic_template(
    tmp_path: Path, routing, demo_workloads
) -> None:
    train, val, evaluation = routing
    workload = demo_workloads["support-routing"]
    common = {"out_dir": tmp_path, "snapshot_id": None, "warehouse": None}
    base = train_candidate(
        tiny_student("base", options={"val_examples": 0}), workload, train[:16], [], **common
    )
    (base.path / "chat_template.jinja").unlink()  # like a plain pretrained LM with no chat template

    trained = train_candidate(
        tiny_student("hub", kind="causal-lm", base=str(base.path), method="lora", options={"lora_r": 4}),
        workload,
        train[:16],
        val,
        **common,
    )
    student = load_student(trained.path)
    assert student.manifest["base"] == str(base.path) and student.manifest["loss"] == "completion"
    assert student.tokenizer.chat_template == GENERIC_CHAT_TEMPLATE
    assert trained.params == base.params  # LoRA merged back into the base shape
    assert len(student.predict(evaluation[:2])) == 2
