"""The causal-LM kinds: `scratch` (a tiny Llama built from a config with the workload's own tokenizer)
and `causal-lm` (a Hub id or local path). Both generate the teacher's answer as text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.train.kinds import KindSpec


def fit(context: Any, train: list, val: list, manifest: dict[str, Any]) -> Any:
    from flywheel.train.pipeline import fit_causal_candidate

    return fit_causal_candidate(context, train, manifest)


def student(manifest: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    from flywheel.train.student import CausalStudent

    return CausalStudent(manifest, model, tokenizer)


def load(path: Path, manifest: dict[str, Any], batch_size: int, device: str) -> Any:
    from flywheel.train.student import CausalStudent, load_weights

    model, tokenizer = load_weights(path, manifest, device)
    return CausalStudent(manifest, model, tokenizer, batch_size)


SCRATCH = KindSpec(
    name="scratch",
    fit=fit,
    student=student,
    load=load,
    learning_rates={"full": 1e-3, "prompt-tuning": 1e-2},
    adapter_lr=1e-3,
    truncation_side="left",
    description="tiny Llama from a config, tokenizer trained on the workload's text (offline default)",
)
CAUSAL_LM = KindSpec(
    name="causal-lm",
    fit=fit,
    student=student,
    load=load,
    learning_rates={"full": 5e-5, "top-k-layers": 1e-4, "prompt-tuning": 1e-2},
    adapter_lr=2e-4,
    needs_base=True,
    truncation_side="left",
    description="a pretrained causal LM (Hub id or local path) fine-tuned on the teacher's answers",
)
KINDS = (SCRATCH, CAUSAL_LM)
