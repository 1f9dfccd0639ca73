"""Shadow evaluation: the eval metrics on sampled served traffic where the student and the teacher
both answered, with the teacher's answer as the reference, one row per day, model and metric.

The serving stage produces `ShadowPair`s (request messages, the student's and the teacher's assistant
messages); sampling is by a hash of the pair, so it is stable across re-runs and independent of order.
Re-running a day replaces that day's rows.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb

from flywheel.config import WorkloadConfig
from flywheel.evaluate.bootstrap import DEFAULT_RESAMPLES, Estimate
from flywheel.evaluate.runner import evaluate_predictors
from flywheel.records import Example, Prediction, canonical_dumps
from flywheel.store.db import Warehouse


@dataclass(frozen=True, slots=True)
class ShadowPair:
    """One served request answered by both the student (`model_id`) and the teacher."""

    day: date
    model_id: str
    messages: list[dict[str, Any]]
    student: dict[str, Any]
    teacher: dict[str, Any]
    tools: list[dict[str, Any]] | None = None
    response_format: dict[str, Any] | None = None
    slice: str | None = None

    @property
    def key(self) -> str:
        payload = canonical_dumps(
            [self.day.isoformat(), self.model_id, self.messages, self.student, self.teacher]
        )
        return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, slots=True)
class ShadowRow:
    day: date
    model_id: str
    estimate: Estimate


def sample_pairs(pairs: Iterable[ShadowPair], rate: float) -> list[ShadowPair]:
    """Keep a pair when its hash falls under `rate` (deterministic, order-independent)."""
    if not 0 <= rate <= 1:
        raise ValueError(f"sample rate must be in [0, 1], got {rate}")
    return [p for p in pairs if int(p.key[:8], 16) / 0xFFFFFFFF < rate]


class _Answers:
    """Replays the student's served answers."""

    def __init__(self, name: str, answers: dict[str, dict[str, Any]]) -> None:
        self.name = name
        self._answers = answers

    def predict(self, examples: list[Example]) -> list[Prediction]:
        return [Prediction(message=self._answers[e.example_id]) for e in examples]


def shadow_evaluate(
    pairs: list[ShadowPair],
    workload: WorkloadConfig,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[ShadowRow]:
    """Overall metrics with CIs per (day, model), the teacher's answers being the reference."""
    groups: dict[tuple[date, str], list[ShadowPair]] = defaultdict(list)
    for pair in pairs:
        groups[(pair.day, pair.model_id)].append(pair)
    rows = []
    for (day, model_id), group in sorted(groups.items()):
        examples = [_example(pair, workload.id) for pair in group]
        answers = {e.example_id: pair.student for e, pair in zip(examples, group, strict=True)}
        result = evaluate_predictors(
            [_Answers(model_id, answers)],
            examples,
            workload,
            reference="teacher",
            n_resamples=n_resamples,
            seed=seed,
        )
        scored = result.models[model_id]
        rows.extend(ShadowRow(day, model_id, e) for e in scored.estimates if e.slice is None)
    return rows


def _example(pair: ShadowPair, workload_id: str) -> Example:
    return Example(
        example_id=pair.key,
        workload_id=workload_id,
        messages=pair.messages,
        target=pair.teacher,
        slice=pair.slice,
        tools=pair.tools,
        response_format=pair.response_format,
    )


def save_shadow(
    warehouse: Warehouse,
    workload_id: str,
    rows: list[ShadowRow],
    *,
    primary: str | None = None,
    target: float | None = None,
) -> int:
    """Store shadow metrics, replacing earlier rows of the same day and model. `primary` names the
    agreement metric (the gate's primary one) and `target` the gate's min_agreement at scoring time."""
    keys = sorted({(r.day, r.model_id) for r in rows})
    values = [
        (
            r.day,
            workload_id,
            r.model_id,
            r.estimate.metric,
            r.estimate.value,
            r.estimate.ci_low,
            r.estimate.ci_high,
            r.estimate.n,
            target,
            None if primary is None else r.estimate.metric == primary,
        )
        for r in rows
    ]

    def write(con: duckdb.DuckDBPyConnection) -> int:
        for day, model_id in keys:
            con.execute(
                "DELETE FROM shadow_evaluations WHERE day = ? AND workload_id = ? AND model_id = ?",
                [day, workload_id, model_id],
            )
        if values:
            con.executemany(
                "INSERT INTO shadow_evaluations (day, workload_id, model_id, metric, value, ci_low, "
                "ci_high, n, target, is_primary) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            )
        return len(values)

    return warehouse.write(write)


def run_shadow(
    warehouse: Warehouse,
    workload: WorkloadConfig,
    pairs: list[ShadowPair],
    *,
    rate: float = 1.0,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> list[ShadowRow]:
    """Sample, score and store one batch of served pairs (the entry point for serving/flows)."""
    from flywheel.evaluate.runner import primary_metric

    rows = shadow_evaluate(sample_pairs(pairs, rate), workload, n_resamples=n_resamples, seed=seed)
    save_shadow(
        warehouse, workload.id, rows, primary=primary_metric(workload), target=workload.gate.min_agreement
    )
    return rows
