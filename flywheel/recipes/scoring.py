"""Score a workload's promoted student on a recipe's held-out gold files, with the teacher's cost.

`score_on_gold` loads the champion (or a named model) from the registry with its bundle, answers the
held-out requests with it (the same predictor `flywheel serve` runs) and with the teacher (a replay
priced at the configured teacher model's catalog price: the public data has no logged usage, so its
tokens are counted from the request the application sends, system prompt included, with the model
family's tokenizer, as `flywheel costs` counts them: flywheel/costs/tokens.py), and scores both
against gold with the evaluation runner: metrics with 95% bootstrap intervals, latency, throughput
and cost per 1k requests (the student's from the serving hardware's hourly rate and its measured
throughput). Extraction workloads also get slot-level scores: micro precision/recall/F1 over (slot,
value) pairs.

A partially promoted champion (a calibrated cascade: flywheel/evaluate/partial.py) is also scored as
serve runs it (`as_served`): the student's answer where its confidence reaches the recorded threshold
and it claims the turn, the teacher's elsewhere; its coverage on the gold files and the mix's cost
(the student runs on every request, the teacher on the rest) beside the student's own figures.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from flywheel.hardware_profiles import DEFAULT_PROFILE
from flywheel.records import Example, Prediction, message_text

SPACES = re.compile(r"\s+")


def slot_pairs(answer: Any) -> Counter[tuple[str, str]]:
    """The (slot, value) pairs of an {"intent", "slots"} answer; a repeated slot gives one per value."""
    pairs: Counter[tuple[str, str]] = Counter()
    slots = answer.get("slots") if isinstance(answer, dict) else None
    if not isinstance(slots, dict):
        return pairs
    for name, value in slots.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str | int | float) and not isinstance(item, bool):
                text = SPACES.sub(" ", str(item)).strip()
                if text:
                    pairs[(str(name), text)] += 1
    return pairs


def parse_object(text: str) -> dict[str, Any] | None:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def slot_scores(predictions: list[dict[str, Any] | None], references: list[dict[str, Any]]) -> dict[str, Any]:
    """Micro P/R/F1 over (slot, value) pairs, and intent accuracy; an unparseable prediction has none."""
    tp = fp = fn = intents = 0
    for pred, ref in zip(predictions, references, strict=True):
        mine, gold = slot_pairs(pred), slot_pairs(ref)
        hit = sum((mine & gold).values())
        tp, fp, fn = tp + hit, fp + sum(mine.values()) - hit, fn + sum(gold.values()) - hit
        intents += pred is not None and pred.get("intent") == ref.get("intent")
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
    return {
        "slot_precision": precision,
        "slot_recall": recall,
        "slot_f1": f1,
        "intent_accuracy": intents / len(references) if references else None,
        "pairs": {"tp": tp, "fp": fp, "fn": fn},
    }


class Recording:
    """A predictor that keeps what the wrapped student answered (the runner only returns scores)."""

    def __init__(self, name: str, inner: Any) -> None:
        self.name = name
        self.inner = inner
        self.predictions: list[Prediction] = []
        if isinstance(getattr(inner, "model", None), str):  # an API model (or its replay) stays one
            self.model = inner.model
            self.replayed = bool(getattr(inner, "replayed", False))

    def predict(self, examples: list[Example]) -> list[Prediction]:
        answered = self.inner.predict(examples)
        self.predictions.extend(answered)
        return answered


def as_request(example: Example) -> Example:
    """A gold example as the request the application sends: the student answers it through its
    bundle, exactly as `flywheel serve` would."""
    request: dict[str, Any] = {"messages": example.messages}
    for key, value in (("tools", example.tools), ("response_format", example.response_format)):
        if value is not None:
            request[key] = value
    return replace(example, request=request)


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def score_on_gold(
    config_path: str | Path,
    recipe_name: str,
    data: Path,
    *,
    home: str | Path | None = None,
    model_id: str | None = None,
    hardware: str = DEFAULT_PROFILE,
    resamples: int = 1000,
    limit: int | None = None,
) -> dict[str, Any]:
    """The figures of the acceptance table for one workload; see the module docstring."""
    from flywheel.bundle import load_predictor
    from flywheel.evaluate.runner import ReplayPredictor, evaluate_predictors
    from flywheel.hardware_profiles import usd_per_hour
    from flywheel.loop import Loop
    from flywheel.recipes import get_recipe
    from flywheel.registry import Registry

    recipe = get_recipe(recipe_name)
    recipe.check_data(data)
    loop = Loop.open(config_path, home)
    workload = loop.workload(recipe.workload_id)
    registry = Registry(loop.warehouse, loop.home)
    record = _model_record(registry, workload.id, model_id)
    examples = [as_request(e) for e in recipe.gold(data, workload)[:limit]]
    student = Recording(record.model_id, load_predictor(registry.artifact_dir(record)))
    teacher_model = loop.config.teacher_for(workload.id).model
    teacher = Recording("teacher", ReplayPredictor(name="teacher", model=teacher_model))
    result = evaluate_predictors(
        [student, teacher],
        examples,
        workload,
        reference="gold",
        prices=loop.prices,
        hardware_usd_per_hour=usd_per_hour(hardware),
        n_resamples=resamples,
    )
    mine, theirs = result.models[record.model_id], result.models["teacher"]
    out = {
        "workload": workload.id,
        "task": workload.task,
        "model_id": record.model_id,
        "kind": record.kind,
        "promoted": record.stage == "champion",
        "n": result.n_examples,
        "student": _summary(mine),
        "teacher": _summary(theirs) | {"model": teacher_model} | _tokens(teacher.predictions, teacher.inner),
        "hardware": hardware,
        "params": record.params,
        "size_mb": round(directory_bytes(registry.artifact_dir(record)) / 2**20, 1),
        "train_seconds": record.train_seconds,
        "savings_pct": _savings(mine.cost_per_1k, theirs.cost_per_1k),
    }
    served = _as_served(record, mine, theirs, workload.task, examples, resamples)
    if served is not None:
        out["as_served"] = served
    if workload.task == "extraction":
        references = [parse_object(e.gold or "") or {} for e in examples]
        for who, recorded in (("student", student), ("teacher", teacher)):
            answers = [parse_object(message_text(p.message)) for p in recorded.predictions]
            out[who] |= slot_scores(answers, references)
    return out


def _as_served(
    record: Any, student: Any, teacher: Any, task: str, examples: list[Example], resamples: int
) -> dict[str, Any] | None:
    """The partial champion's mix as serve runs it (its recorded threshold and claims), or None for a
    model promoted on all traffic."""
    from flywheel.evaluate.cascade import claim_mask, served_view
    from flywheel.registry import serving_entry

    serving = serving_entry(record.metrics)
    if not serving:
        return None
    mask = claim_mask(student, float(serving["threshold"]), str(serving.get("claims") or "all"))
    view = served_view(
        student, teacher, mask, task=task, slices=[e.slice for e in examples], n_resamples=resamples, seed=0
    )
    coverage = float(view.extras["coverage"])
    cost = None
    if student.cost_per_1k is not None and teacher.cost_per_1k is not None:
        cost = student.cost_per_1k + (1 - coverage) * teacher.cost_per_1k
    return {
        "threshold": serving["threshold"],
        "claims": serving.get("claims"),
        "coverage_calibrated": serving.get("coverage"),
        "coverage": round(coverage, 4),
        "metrics": _summary(view)["metrics"],
        "cost_per_1k": cost,
        "savings_pct": _savings(cost, teacher.cost_per_1k),
    }


def _model_record(registry: Any, workload_id: str, model_id: str | None) -> Any:
    """The named model (which must belong to the workload), else the workload's champion."""
    from flywheel.registry import RegistryError

    record = registry.get(model_id) if model_id else registry.champion(workload_id)
    if record is None:
        raise RegistryError(f"workload {workload_id!r} has no promoted champion (pass --model MODEL_ID)")
    if record.workload_id != workload_id:
        raise RegistryError(
            f"model {record.model_id} belongs to workload {record.workload_id!r}, not {workload_id!r}"
        )
    return record


def _summary(model: Any) -> dict[str, Any]:
    metrics = {
        e.metric: [_round(e.value), _round(e.ci_low), _round(e.ci_high)]
        for e in model.estimates
        if e.slice is None and not e.metric.startswith("class_f1:")
    }
    return {
        "metrics": metrics,
        "latency_ms_mean": _round(model.latency_ms_mean, 3),
        "latency_ms_p95": _round(model.latency_ms_p95, 3),
        "requests_per_second": _round(model.requests_per_second, 1),
        "cost_per_1k": model.cost_per_1k,
        "cost_basis": model.cost_basis,
    }


def _tokens(predictions: list[Prediction], replay: Any) -> dict[str, Any]:
    """Mean tokens per request, and how they were counted (the replay's methods: no usage is logged)."""
    n = max(len(predictions), 1)
    methods = ", ".join(f"{method} ({count})" for method, count in replay.token_methods.most_common())
    return {
        "prompt_tokens_mean": round(sum(p.prompt_tokens for p in predictions) / n, 1),
        "completion_tokens_mean": round(sum(p.completion_tokens for p in predictions) / n, 1),
        "tokens_basis": f"counted from the requests, no usage logged in the data: {methods}",
    }


def _savings(student: float | None, teacher: float | None) -> float | None:
    if student is None or teacher is None or teacher <= 0:
        return None
    return 1 - student / teacher


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)
