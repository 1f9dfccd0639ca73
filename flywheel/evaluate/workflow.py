"""One evaluation turn of a workload: score, gate, store, and apply the decision to the registry.

Candidates, the current champion and the teacher answer the same eval split (the latest snapshot's);
the gate decides under the evaluation's reference (gold: non-inferior to the teacher; teacher:
agreement >= target); the run, every estimate, the target and the decision's reasons are stored; a
passing winner is promoted (the old champion retired), the candidates that lost are retired, and every
evaluated model's card and `metrics` get the scores. A "reject" or "insufficient_eval" decision changes
no champion.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.answers.claims import ALL, claims_of
from flywheel.config import WorkloadConfig
from flywheel.evaluate.bootstrap import DEFAULT_RESAMPLES
from flywheel.evaluate.gate import PROMOTE_PARTIAL, GateDecision
from flywheel.evaluate.partial import CascadeSettings, decide_with_cascade
from flywheel.evaluate.runner import EvaluationResult, Judge, ModelResult, Progress, evaluate_predictors
from flywheel.evaluate.store import save_evaluation, save_tool_metrics
from flywheel.evaluate.tool_metrics import ToolMetric, evaluation_tool_metrics, nested
from flywheel.pricing import PriceCatalog
from flywheel.records import Example, Prediction, Predictor, utcnow
from flywheel.registry import TEACHER, Promotion, Registry, RegistryError, serving_entry


class NamedPredictor:
    """A predictor under another name (the registry's model_id), otherwise unchanged."""

    def __init__(self, predictor: Predictor, name: str) -> None:
        self._inner = predictor
        self.name = name

    def predict(self, examples: list[Example]) -> list[Prediction]:
        return self._inner.predict(examples)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)


@dataclass
class EvaluationReport:
    run_id: str
    workload_id: str
    snapshot_id: str | None
    result: EvaluationResult
    decision: GateDecision
    previous_champion: str | None
    promotion: Promotion | None = None
    retired: list[str] = field(default_factory=list)
    applied: bool = True
    data_need: dict[str, Any] | None = None  # flywheel.evaluate.data_need, when a curve was recorded
    rejudged_run: str | None = None  # no new candidate: the eval run whose candidates were re-scored
    tool_metrics: dict[str, list[ToolMetric]] = field(default_factory=dict)  # tool_call workloads

    def as_dict(self) -> dict[str, Any]:
        """The `flywheel evaluate --json` object."""
        return {
            "run_id": self.run_id,
            "workload": self.workload_id,
            "snapshot_id": self.snapshot_id,
            "decision": self.decision.decision,
            "winner": self.decision.winner,
            "champion": self.decision.champion,
            "previous_champion": self.previous_champion,
            "reasons": self.decision.reasons,
            "summary": self.decision.summary,
            "target": self.decision.target.as_dict() if self.decision.target else None,
            "eval_rows_needed": self.decision.eval_rows_needed,
            "data_need": self.data_need,
            "applied": self.applied,
            "rejudged_run": self.rejudged_run,
            "retired": self.retired,
            "reference": self.result.reference,
            "primary_metric": self.decision.primary_metric,
            "n_examples": self.result.n_examples,
            "skipped": self.result.skipped,
            "models": [m.summary() for m in self.result.models.values()],
            "checks": self.decision.as_dict()["checks"],
            "cascade": self.decision.cascade,
            "cascades": self.decision.cascades,
            "tool_metrics": {model: nested(rows) for model, rows in self.tool_metrics.items()},
            "results": self.result.rows(),
            "slice_results": self.result.rows(slices=True),
        }


def evaluate_workload(
    registry: Registry,
    workload: WorkloadConfig,
    examples: list[Example],
    *,
    candidates: Mapping[str, Predictor],
    teacher: Predictor,
    champion: tuple[str, Predictor] | None = None,
    prices: PriceCatalog | None = None,
    hardware_usd_per_hour: float | None = None,
    snapshot_id: str | None = None,
    reference: str = "auto",
    apply: bool = True,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    judge: Judge | None = None,
    embedding_model: str | Path | None = None,
    progress: Progress | None = None,
) -> EvaluationReport:
    """Score candidates (model_id -> predictor), the champion and the teacher; gate; store; apply."""
    started = utcnow()
    champion_id = champion[0] if champion else None
    contenders = {k: v for k, v in candidates.items() if k != champion_id}
    predictors = [NamedPredictor(p, model_id) for model_id, p in contenders.items()]
    if champion is not None:
        predictors.append(NamedPredictor(champion[1], champion[0]))
    predictors.append(NamedPredictor(teacher, TEACHER))
    result = evaluate_predictors(
        predictors,  # type: ignore[arg-type]
        examples,
        workload,
        reference=reference,  # type: ignore[arg-type]
        prices=prices,
        hardware_usd_per_hour=hardware_usd_per_hour,
        n_resamples=n_resamples,
        seed=seed,
        judge=judge,
        embedding_model=embedding_model,
        progress=progress,
    )
    settings = CascadeSettings(
        workload.task,
        result.slices,
        n_resamples,
        seed,
        claims={model_id: claims_of(p, workload.task) for model_id, p in contenders.items()},
        champion_serving=champion_serving(registry, champion_id),
    )
    decision = decide_with_cascade(
        workload.gate,
        [result.models[model_id] for model_id in contenders],
        result.models[TEACHER],
        result.models[champion_id] if champion_id else None,
        settings,
        reference=result.reference,
    )
    run_id = f"{workload.id}-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    report = EvaluationReport(run_id, workload.id, snapshot_id, result, decision, champion_id, applied=apply)
    served = {champion_id: settings.champion_serving} if champion_id and settings.champion_serving else {}
    report.tool_metrics = evaluation_tool_metrics(result, decision.cascades, served)
    save_evaluation(
        registry.warehouse,
        run_id=run_id,
        result=result,
        decision=decision,
        snapshot_id=snapshot_id,
        started_at=started,
        finished_at=utcnow(),
    )
    save_tool_metrics(registry.warehouse, run_id, workload.id, report.tool_metrics, utcnow())
    if apply:
        _apply(registry, report, list(contenders), champion_id)
    return report


def _apply(
    registry: Registry, report: EvaluationReport, contenders: list[str], champion_id: str | None
) -> None:
    decision = report.decision
    for model_id in [*contenders, *([champion_id] if champion_id else [])]:
        scored = report.result.models[model_id]
        registry.record_metrics(model_id, {"evaluation": model_metrics(report, scored)})
        registry.update_card(model_id, model_card_section(report, scored))
    if decision.winner is not None:
        reason = f"gate passed in run {report.run_id}: " + "; ".join(
            c.detail for c in decision.checks if c.model == decision.winner
        )
        if decision.decision == PROMOTE_PARTIAL:
            reason = f"partial promotion in run {report.run_id}: {decision.summary}"
        report.promotion = registry.promote(
            decision.winner, reason, action="promote", run_id=report.run_id, serving=serving(decision)
        )
    report.retired = [m for m in contenders if m != decision.winner]
    registry.retire(report.retired)


def serving(decision: GateDecision) -> dict[str, Any]:
    """How serve runs the winner: the calibrated cascade of a partial promotion, else all traffic."""
    if decision.decision == PROMOTE_PARTIAL and decision.cascade is not None:
        return {key: decision.cascade[key] for key in ("coverage", "threshold", "claims")}
    return {"coverage": 1.0, "threshold": None, "claims": ALL}


def champion_serving(registry: Registry, champion_id: str | None) -> tuple[float, str] | None:
    """(threshold, claims) of a champion promoted partially, to compare candidates with it as served."""
    if champion_id is None:
        return None
    try:
        metrics = registry.get(champion_id).metrics
    except RegistryError:
        return None  # a champion scored from outside the registry: judged on all traffic
    entry = serving_entry(metrics)
    return (float(entry["threshold"]), str(entry.get("claims") or ALL)) if entry else None


def model_metrics(report: EvaluationReport, scored: ModelResult) -> dict[str, Any]:
    """What lands in models.metrics: overall estimates, speed, cost and the gate's verdict."""
    return {
        "run_id": report.run_id,
        "reference": report.result.reference,
        "n": scored.n,
        "metrics": {
            e.metric: {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high}
            for e in scored.estimates
            if e.slice is None
        },
        "latency_ms_mean": scored.latency_ms_mean,
        "tokens_per_second": scored.tokens_per_second,
        "cost_per_1k": scored.cost_per_1k,
        "gate": report.decision.failures(scored.model) or ["passed"],
        "cascade": _cascade_of(report.decision, scored.model),
    }


def _cascade_of(decision: GateDecision, model: str) -> dict[str, Any] | None:
    """The model's coverage curve summary (threshold, coverage, mix) without the curve itself."""
    found = next((c for c in decision.cascades if c["model"] == model), None)
    return {k: v for k, v in found.items() if k != "curve"} if found else None


def model_card_section(report: EvaluationReport, scored: ModelResult) -> str:
    """The model card's evaluation section (markdown): scores with CIs, slices, speed, cost, gate."""
    teacher = report.result.models[TEACHER]
    failures = report.decision.failures(scored.model)
    verdict = "promoted to champion" if report.decision.winner == scored.model else "not promoted"
    target = report.decision.target
    lines = [
        f"## Evaluation ({report.run_id})",
        "",
        f"Eval split: {scored.n} examples, reference: {report.result.reference}. Gate: {verdict}"
        + (f" ({', '.join(failures)})." if failures else "."),
        "",
        f"Target: {target.text if target else '-'}. Decision: {report.decision.decision}.",
        "",
        *_cascade_lines(report.decision, scored.model),
        "| metric | value | 95% CI | teacher |",
        "|---|---|---|---|",
    ]
    for item in (e for e in scored.estimates if e.slice is None and e.value is not None):
        theirs = teacher.get(item.metric)
        lines.append(
            f"| {item.metric} | {_fmt(item.value)} | {_fmt(item.ci_low)} - {_fmt(item.ci_high)} | "
            f"{_fmt(theirs.value if theirs else None)} |"
        )
    slices = scored.slice_estimates(scored.primary_metric)
    if slices:
        lines += [
            "",
            f"{scored.primary_metric} per slice:",
            "",
            "| slice | n | value | 95% CI |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {s.slice} | {s.n} | {_fmt(s.value)} | {_fmt(s.ci_low)} - {_fmt(s.ci_high)} |" for s in slices
        ]
    lines += [
        "",
        f"Latency {scored.latency_ms_mean:.1f} ms mean (p95 {scored.latency_ms_p95:.1f} ms), "
        f"{_fmt(scored.tokens_per_second, 1)} tokens/s; cost ${_cost(scored.cost_per_1k)} per 1k requests "
        f"({scored.cost_basis}) vs teacher ${_cost(teacher.cost_per_1k)}.",
    ]
    return "\n".join(lines)


def _cascade_lines(decision: GateDecision, model: str) -> list[str]:
    cascade = _cascade_of(decision, model)
    if not cascade or cascade.get("threshold") is None:
        return []
    only = ", tool-call turns only" if cascade.get("claims") == "tool_calls" else ""
    return [
        f"Cascade: at confidence >= {cascade['threshold']:.4f}{only} the student answers "
        f"{cascade['coverage']:.1%} of the eval split and the mix with the teacher scores "
        f"{_fmt(cascade['value'])} (CI low {_fmt(cascade['ci_low'])}).",
        "",
    ]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _cost(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
