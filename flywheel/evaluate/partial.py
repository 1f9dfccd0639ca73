"""Partial promotion: when no candidate passes the gate on all traffic, promote one for the share it
answers well enough, with the teacher answering the rest (a calibrated cascade, flywheel/evaluate/
cascade.py).

`decide_with_cascade` runs the full gate (flywheel.evaluate.gate.decide) first; a candidate that
passes it is promoted as before ("promote", coverage 1). Otherwise every candidate that failed on
quality (not on cost: the cascade does not change the student's cost per request it runs) is
calibrated, and tried at its feasible thresholds, largest coverage first: the mix the threshold
gives (student where confident, valid and claiming the turn, teacher elsewhere) must pass every
check of the gate (criterion, slices, format validity, the champion as served, the student's cost),
each recorded as `partial:<check>`, and its coverage must reach `gate.min_coverage`
(`coverage_below_minimum` otherwise). The passing candidate with the largest projected saving per
request (coverage x teacher cost - student cost) wins: decision "promote_partial", with the
threshold, coverage and claim rule serve must apply (GateDecision.cascade). A champion promoted
partially is compared as it is served: its mix at its recorded threshold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from flywheel.answers.claims import ALL, TOOL_CALLS
from flywheel.config import GateConfig
from flywheel.evaluate.cascade import Cascade, CascadePoint, calibrate, claim_mask, served_view
from flywheel.evaluate.gate import (
    PROMOTE,
    PROMOTE_PARTIAL,
    GateCheck,
    GateDecision,
    GateTarget,
    candidate_checks,
    decide,
)
from flywheel.evaluate.runner import ModelResult

# failures a cascade cannot cure: the student's cost per request it runs, or no score to mix at all
NOT_CASCADABLE = frozenset({"not_cheaper_enough", "cost_unknown", "primary_metric_missing"})
MAX_TRIES = 5  # feasible thresholds tried per candidate before giving up on it


@dataclass(frozen=True)
class CascadeSettings:
    """What the cascade needs beyond the gate's inputs: the eval split's slices, the bootstrap's
    resamples and seed (the runner's, so draws pair), each candidate's claim rule, and the champion's
    served (threshold, claims) when it was promoted partially."""

    task: str
    slices: list[str | None]
    n_resamples: int
    seed: int
    claims: Mapping[str, str] = field(default_factory=dict)
    champion_serving: tuple[float, str] | None = None


def decide_with_cascade(
    gate: GateConfig,
    candidates: list[ModelResult],
    teacher: ModelResult,
    champion: ModelResult | None,
    settings: CascadeSettings,
    *,
    reference: str = "gold",
) -> GateDecision:
    """The gate's decision, or a partial promotion when only a cascade of some candidate passes."""
    if champion is not None and settings.champion_serving is not None:
        threshold, claims = settings.champion_serving
        champion = served_view(champion, teacher, claim_mask(champion, threshold, claims), **_boot(settings))
    decision = decide(gate, candidates, teacher, champion, reference=reference)
    target = decision.target
    if target is None:
        return decision
    cascades = {c.model: _calibrate(c, teacher, target, settings) for c in candidates}
    decision.cascades = [cascade.as_dict() for cascade in cascades.values()]
    if decision.decision == PROMOTE:
        return decision
    passing, checks = [], []
    for candidate in candidates:
        if set(decision.failures(candidate.model)) & NOT_CASCADABLE:
            continue
        found, own = _try(gate, target, candidate, teacher, champion, cascades[candidate.model], settings)
        checks += own
        if found is not None:
            passing.append((candidate, found))
    if not passing:
        decision.checks += checks
        decision.reasons += [c.code for c in checks if not c.passed and c.code not in decision.reasons]
        return decision
    return _partial_decision(decision, checks, passing, cascades, teacher)


def _boot(settings: CascadeSettings) -> dict[str, Any]:
    return {"task": settings.task, "slices": settings.slices, "n_resamples": settings.n_resamples,
            "seed": settings.seed}  # fmt: skip


def _calibrate(
    candidate: ModelResult, teacher: ModelResult, target: GateTarget, settings: CascadeSettings
) -> Cascade:
    return calibrate(
        candidate,
        teacher,
        task=settings.task,
        metric=target.metric,
        floor=target.floor,
        min_score=target.min_score,
        claims=settings.claims.get(candidate.model, ALL),
        n_resamples=settings.n_resamples,
        seed=settings.seed,
    )


def _try(
    gate: GateConfig,
    target: GateTarget,
    candidate: ModelResult,
    teacher: ModelResult,
    champion: ModelResult | None,
    cascade: Cascade,
    settings: CascadeSettings,
) -> tuple[CascadePoint | None, list[GateCheck]]:
    """The largest-coverage threshold whose mix passes every check, and the checks of the last try."""
    feasible = [p for p in cascade.feasible() if p.coverage + 1e-12 >= gate.min_coverage]
    if not feasible:
        return None, [_coverage_check(gate, candidate.model, cascade)]
    checks: list[GateCheck] = []
    for point in feasible[:MAX_TRIES]:
        mask = claim_mask(candidate, point.threshold, cascade.claims)
        view = served_view(candidate, teacher, mask, **_boot(settings))
        checks = [
            _renamed(c, point, cascade.claims)
            for c in candidate_checks(gate, target, view, teacher, champion)
        ]
        checks.append(_coverage_check(gate, candidate.model, cascade, point))
        if all(c.passed for c in checks):
            return point, checks
    return None, checks


def _coverage_check(
    gate: GateConfig, model: str, cascade: Cascade, point: CascadePoint | None = None
) -> GateCheck:
    best = point or cascade.chosen
    if best is None:
        detail = f"no confidence threshold brings the mix to the target ({cascade.metric})"
        return GateCheck(
            model, "partial:coverage", False, "coverage_below_minimum", 0.0, gate.min_coverage, detail
        )
    ok = best.coverage + 1e-12 >= gate.min_coverage
    detail = (
        f"student answers {best.coverage:.1%} ({best.claimed} eval rows) "
        f"at confidence >= {best.threshold:.4f}"
        f"{_claims_text(cascade.claims)}; the mix's {cascade.metric} {best.value:.4f} (CI low "
        f"{best.ci_low:.4f}); needs coverage >= {gate.min_coverage:.0%}"
    )
    code = "passed" if ok else "coverage_below_minimum"
    return GateCheck(model, "partial:coverage", ok, code, best.coverage, gate.min_coverage, detail)


def _renamed(check: GateCheck, point: CascadePoint, claims: str) -> GateCheck:
    where = f"mix at confidence >= {point.threshold:.4f} ({point.coverage:.1%} student{_claims_text(claims)})"
    return replace(check, check=f"partial:{check.check}", detail=f"{where}: {check.detail}")


def _claims_text(claims: str) -> str:
    return ", tool-call turns only" if claims == TOOL_CALLS else ""


def _partial_decision(
    full: GateDecision,
    checks: list[GateCheck],
    passing: list[tuple[ModelResult, CascadePoint]],
    cascades: dict[str, Cascade],
    teacher: ModelResult,
) -> GateDecision:
    teacher_cost = teacher.cost_per_1k or 0.0

    def key(item: tuple[ModelResult, CascadePoint]) -> tuple[float, str]:
        """Largest projected saving per request first; ties by name."""
        candidate, point = item
        return (-(point.coverage * teacher_cost - (candidate.cost_per_1k or 0.0)), candidate.model)

    winner, point = min(passing, key=key)
    claims = cascades[winner.model].claims
    cascade = {
        "model": winner.model,
        "threshold": point.threshold,
        "coverage": point.coverage,
        "claims": claims,
        "value": point.value,
        "ci_low": point.ci_low,
        "ci_high": point.ci_high,
        "metric": full.primary_metric,
    }
    why = full.failures(winner.model)
    target = full.target
    summary = (
        f"{winner.model} answers {point.coverage:.1%} of traffic (confidence >= {point.threshold:.4f}"
        f"{_claims_text(claims)}), the teacher the rest: the mix's {full.primary_metric} {point.value:.4f} "
        f"(CI low {point.ci_low:.4f}) passes every check; on all traffic it failed: {', '.join(why)}; "
        f"target: {target.text if target else '-'}"
    )
    return GateDecision(
        PROMOTE_PARTIAL,
        winner.model,
        winner.model,
        full.primary_metric,
        ["passed_partial", *why],
        full.checks + checks,
        target,
        summary,
        cascade=cascade,
        cascades=full.cascades,
    )
