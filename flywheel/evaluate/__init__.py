"""Evaluation, the promotion gate and shadow evaluation.

- `answers`: assistant message -> comparable answer per task type (+ format validity).
- `metrics/<task>/<task>.py`: local `evaluate` metric modules (loaded with `evaluate.load(dir)`).
- `bootstrap`: seeded percentile-bootstrap intervals, overall and per slice, paired across models.
- `runner.evaluate_predictors`: scores, latency, tokens/s and cost per 1k requests on one eval split.
- `gate.decide`: the promotion decision with stable reason codes.
- `workflow.evaluate_workload`: score + gate + store + registry update (what `flywheel evaluate` runs).
- `shadow`: the same metrics on served traffic, stored per day.

Heavy libraries (`evaluate`, sentence-transformers) are imported only when a metric is computed.
"""

from flywheel.evaluate.bootstrap import Estimate
from flywheel.evaluate.gate import GateCheck, GateDecision, decide
from flywheel.evaluate.runner import (
    PRIMARY_METRICS,
    EvaluationResult,
    ModelResult,
    ReplayPredictor,
    Usage,
    evaluate_predictors,
    primary_metric,
)

__all__ = [
    "PRIMARY_METRICS",
    "Estimate",
    "EvaluationResult",
    "GateCheck",
    "GateDecision",
    "ModelResult",
    "ReplayPredictor",
    "Usage",
    "decide",
    "evaluate_predictors",
    "primary_metric",
]
