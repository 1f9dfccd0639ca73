"""The `encoder-classifier` kind: a pretrained encoder (MiniLM by default) with a label head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.train.kinds import KindSpec


def fit(context: Any, train: list, val: list, manifest: dict[str, Any]) -> Any:
    from flywheel.train.pipeline import fit_classifier_candidate

    return fit_classifier_candidate(context, train, val, manifest)


def student(manifest: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    from flywheel.train.student import EncoderStudent

    return EncoderStudent(manifest, model, tokenizer)


def load(path: Path, manifest: dict[str, Any], batch_size: int, device: str) -> Any:
    from flywheel.train.student import EncoderStudent, load_weights

    model, tokenizer = load_weights(path, manifest, device)
    return EncoderStudent(manifest, model, tokenizer, batch_size)


KIND = KindSpec(
    name="encoder-classifier",
    fit=fit,
    student=student,
    load=load,
    tasks=frozenset({"classification"}),
    learning_rates={"full": 1e-4, "top-k-layers": 2e-4, "prompt-tuning": 1e-2},
    adapter_lr=5e-4,
    encoder=True,
    description="pretrained encoder + classification head over the workload's labels",
)
