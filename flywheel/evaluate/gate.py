"""The promotion gate: a pure function from scored models and a workload's GateConfig to a decision.

A candidate passes only when every check passes; each failed check is a stable reason code:
- ci_low_below_threshold: the lower CI bound of the primary metric is below `min_score`, or below the
  teacher's score minus `max_drop_vs_teacher`.
- slice_below_floor:<slice>: a slice with >= `slice_min_examples` examples scores below its floor
  (`slice_floors[slice]`, else `slice_floor`).
- format_validity_below_threshold: the share of well-formed answers is below `min_format_validity`.
- inferior_to_champion: the lower CI bound of (candidate - champion), from paired bootstrap draws, is
  below -`champion_margin`: the data cannot rule out a drop larger than the margin.
- not_cheaper_enough: cost per 1k requests above (1 - `min_cost_reduction`) x the teacher's.
- cost_unknown: the candidate's or the teacher's cost could not be measured (unknown is not cheap).
- primary_metric_missing: the candidate has no value for the primary metric.
Among passing candidates the cheapest wins (ties: higher primary score, then name). With no passing
candidate the decision is "reject" and the champion stays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from flywheel.config import GateConfig
from flywheel.evaluate.bootstrap import paired_difference
from flywheel.evaluate.runner import LOWER_IS_BETTER, ModelResult

EPS = 1e-12


@dataclass(frozen=True, slots=True)
class GateCheck:
    """One check of one candidate: its reason code, whether it passed, and the numbers behind it."""

    model: str
    check: str
    passed: bool
    code: str
    value: float | None = None
    threshold: float | None = None
    detail: str = ""


@dataclass
class GateDecision:
    decision: str  # promote | reject
    winner: str | None
    champion: str | None  # the champion after this decision
    primary_metric: str
    reasons: list[str]
    checks: list[GateCheck] = field(default_factory=list)

    def failures(self, model: str) -> list[str]:
        return [c.code for c in self.checks if c.model == model and not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "winner": self.winner,
            "champion": self.champion,
            "primary_metric": self.primary_metric,
            "reasons": list(self.reasons),
            "checks": [asdict(c) for c in self.checks],
        }


def decide(
    workload_gate: GateConfig,
    candidates: list[ModelResult],
    teacher: ModelResult,
    champion: ModelResult | None,
) -> GateDecision:
    """Promote the cheapest candidate that passes every check, or reject and keep the champion."""
    metric = workload_gate.primary_metric or teacher.primary_metric
    if metric in LOWER_IS_BETTER:
        raise ValueError(f"gate primary_metric {metric!r} is lower-is-better; choose a score to maximise")
    checks: list[GateCheck] = []
    passing = []
    for candidate in candidates:
        own = candidate_checks(workload_gate, metric, candidate, teacher, champion)
        checks.extend(own)
        if all(c.passed for c in own):
            passing.append(candidate)
    kept = champion.model if champion is not None else None
    if not passing:
        reasons = _unique(c.code for c in checks if not c.passed) or ["no_candidates"]
        return GateDecision("reject", None, kept, metric, reasons, checks)
    winner = min(passing, key=lambda c: (c.cost_per_1k or 0.0, -_value(c, metric), c.model))
    return GateDecision("promote", winner.model, winner.model, metric, ["passed"], checks)


def candidate_checks(
    gate: GateConfig, metric: str, candidate: ModelResult, teacher: ModelResult, champion: ModelResult | None
) -> list[GateCheck]:
    """Every check of one candidate, passed or not, in a fixed order."""
    primary = candidate.get(metric)
    if primary is None or primary.value is None or primary.ci_low is None:
        return [GateCheck(candidate.model, "primary_metric", False, "primary_metric_missing", detail=metric)]
    checks = _threshold_checks(gate, metric, candidate, teacher)
    checks += _slice_checks(gate, metric, candidate)
    checks.append(_format_check(gate, candidate))
    if champion is not None and champion.model != candidate.model:
        checks.append(_champion_check(gate, metric, candidate, champion))
    checks.append(_cost_check(gate, candidate, teacher))
    return checks


def _threshold_checks(
    gate: GateConfig, metric: str, candidate: ModelResult, teacher: ModelResult
) -> list[GateCheck]:
    ci_low = candidate.get(metric).ci_low  # type: ignore[union-attr]
    checks = []
    if gate.min_score is not None:
        ok = ci_low + EPS >= gate.min_score
        detail = f"{metric} ci_low {ci_low:.4f} vs min_score {gate.min_score:.4f}"
        checks.append(
            _check(candidate, "min_score", ok, "ci_low_below_threshold", ci_low, gate.min_score, detail)
        )
    teacher_value = _value(teacher, metric, default=None)
    if gate.max_drop_vs_teacher is not None and teacher_value is not None:
        floor = teacher_value - gate.max_drop_vs_teacher
        ok = ci_low + EPS >= floor
        detail = (
            f"{metric} ci_low {ci_low:.4f} vs teacher {teacher_value:.4f} - "
            f"max_drop {gate.max_drop_vs_teacher:.4f} = {floor:.4f}"
        )
        checks.append(_check(candidate, "vs_teacher", ok, "ci_low_below_threshold", ci_low, floor, detail))
    return checks


def _slice_checks(gate: GateConfig, metric: str, candidate: ModelResult) -> list[GateCheck]:
    floors = gate.slice_floors
    checks = []
    for item in candidate.slice_estimates(metric):
        floor = floors.get(item.slice, gate.slice_floor)
        if floor is None or item.n < gate.slice_min_examples or item.value is None:
            continue
        ok = item.value + EPS >= floor
        detail = f"slice {item.slice!r} (n={item.n}) {metric} {item.value:.4f} vs floor {floor:.4f}"
        code = f"slice_below_floor:{item.slice}"
        checks.append(_check(candidate, f"slice:{item.slice}", ok, code, item.value, floor, detail))
    return checks


def _format_check(gate: GateConfig, candidate: ModelResult) -> GateCheck:
    validity = _value(candidate, "format_validity", default=0.0)
    ok = validity + EPS >= gate.min_format_validity
    detail = f"format_validity {validity:.4f} vs {gate.min_format_validity:.4f}"
    code = "format_validity_below_threshold"
    return _check(candidate, "format_validity", ok, code, validity, gate.min_format_validity, detail)


def _champion_check(
    gate: GateConfig, metric: str, candidate: ModelResult, champion: ModelResult
) -> GateCheck:
    """Non-inferiority on paired draws; point values when the draws are not comparable."""
    mine, theirs = _value(candidate, metric), _value(champion, metric)
    a, b = candidate.draws.get(metric), champion.draws.get(metric)
    if a is not None and b is not None and a.shape == b.shape:
        diff, low, _ = paired_difference(a, b, mine, theirs)
        bound = low if low is not None else diff
    else:
        diff = bound = mine - theirs
    ok = bound + EPS >= -gate.champion_margin
    detail = (
        f"{metric} {mine:.4f} vs champion {champion.model} {theirs:.4f}: difference {diff:+.4f}, "
        f"lower bound {bound:+.4f} vs -margin {-gate.champion_margin:.4f}"
    )
    return _check(candidate, "vs_champion", ok, "inferior_to_champion", bound, -gate.champion_margin, detail)


def _cost_check(gate: GateConfig, candidate: ModelResult, teacher: ModelResult) -> GateCheck:
    mine, theirs = candidate.cost_per_1k, teacher.cost_per_1k
    if mine is None or theirs is None:
        detail = f"cost per 1k: candidate {mine}, teacher {theirs} ({teacher.cost_basis})"
        return _check(candidate, "cost", False, "cost_unknown", mine, None, detail)
    limit = theirs * (1 - gate.min_cost_reduction)
    ok = mine <= limit + EPS
    saving = 1 - mine / theirs if theirs > 0 else 0.0
    detail = (
        f"${mine:.3g}/1k vs teacher ${theirs:.3g}/1k: {saving:.1%} cheaper, "
        f"needs {gate.min_cost_reduction:.0%}"
    )
    return _check(candidate, "cost", ok, "not_cheaper_enough", mine, limit, detail)


def _check(
    candidate: ModelResult,
    check: str,
    ok: bool,
    code: str,
    value: float | None,
    threshold: float | None,
    detail: str,
) -> GateCheck:
    return GateCheck(candidate.model, check, ok, "passed" if ok else code, value, threshold, detail)


def _value(result: ModelResult, metric: str, default: float | None = 0.0) -> Any:
    item = result.get(metric)
    return item.value if item is not None and item.value is not None else default


def _unique(codes: Any) -> list[str]:
    return list(dict.fromkeys(codes))
