"""Evaluation's predictions made in worker processes (one task per model), scored and gated here.

The expensive part of an evaluation is each model answering the eval split; the scoring, intervals,
gate and registry writes are cheap and write the warehouse, so they stay in the flow's process (DuckDB
has one writer). A worker loads the model from its artifact directory through the same bundle predictor
`flywheel serve` uses, answers the examples in batches and returns the predictions with its wall time.
`Precomputed` hands those answers back to the unchanged scoring loop, which times the model by the
worker's clock, not by the lookup's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.records import Example, Prediction

BATCH_SIZE = 64  # as evaluate_predictors batches a local predictor


@dataclass(frozen=True)
class PredictJob:
    config_path: str
    workload_id: str
    model_id: str
    artifact_dir: str
    examples: tuple[Example, ...]


@dataclass
class PredictOutcome:
    model_id: str
    predictions: list[Prediction]
    seconds: float  # the worker's wall time for all of them (model load excluded, as locally)
    worker: str  # host:pid


# (model_id -> artifact dir, examples, workload_id) -> model_id -> outcome; the flows supply it
RemotePredict = Callable[[Mapping[str, Path], list[Example], str], Mapping[str, PredictOutcome]]


def predict_job(job: PredictJob) -> PredictOutcome:
    """Load one model and answer the examples (runs in a worker process; reads no warehouse)."""
    from flywheel.bundle import default_bundle, load_predictor
    from flywheel.config import load_config
    from flywheel.evaluate.runner import answer_in_batches

    workload = load_config(job.config_path).workload(job.workload_id)
    predictor = load_predictor(job.artifact_dir, default=default_bundle(workload))
    predictions, seconds = answer_in_batches(predictor, list(job.examples), BATCH_SIZE)
    return PredictOutcome(job.model_id, predictions, seconds, f"{socket.gethostname()}:{os.getpid()}")


class Precomputed:
    """A loaded predictor (its attributes: bundle, claims, manifest) whose answers on the eval split a
    worker already computed: `predict` returns them, and `seconds_used` sums the worker's time for the
    examples asked (its average per example), so speed and hardware cost are the worker's."""

    def __init__(self, inner: Any, examples: list[Example], outcome: PredictOutcome) -> None:
        if len(outcome.predictions) != len(examples):
            raise ValueError(f"{outcome.model_id}: {len(outcome.predictions)} answers for {len(examples)}")
        self._inner = inner
        self._answers = {e.example_id: p for e, p in zip(examples, outcome.predictions, strict=True)}
        self._per_example = outcome.seconds / max(1, len(examples))
        self.seconds_used = 0.0
        self.worker = outcome.worker

    def predict(self, examples: list[Example]) -> list[Prediction]:
        missing = [e.example_id for e in examples if e.example_id not in self._answers]
        if missing:
            raise KeyError(f"no worker answer for {len(missing)} examples (first: {missing[0]})")
        self.seconds_used += self._per_example * len(examples)
        return [self._answers[e.example_id] for e in examples]

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)
