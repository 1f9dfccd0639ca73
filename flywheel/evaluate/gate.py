"""The promotion gate: a pure function from scored models and a workload's GateConfig to a decision.

What "good enough" means depends on the evaluation's reference (see `GateTarget`):
- reference "gold" (every eval example has a ground-truth label): non-inferiority to the teacher. The
  candidate's CI lower bound must reach the teacher's score minus `max_drop_vs_teacher` (`vs_teacher`).
- reference "teacher" (replay/relabel: the references are the teacher's own answers, so the teacher
  scores 1.0 by construction and "no worse than the teacher" would demand perfection): agreement. The
  candidate's CI lower bound must reach `min_agreement` (`agreement`). No vs_teacher check is run.

Power check: a failed quality criterion is only a reject when the eval split could have told. The
margin the split must resolve is `max_drop_vs_teacher` under gold (a candidate exactly as good as the
teacher passes only when its CI half-width is within it), and (1 - `min_agreement`) / 2 under teacher:
the split must be able to certify a candidate halfway between the target and the teacher's own 1.0 (a
candidate at the target itself never clears a CI lower bound, and one at 1.0 has no spread to judge
by). When the candidate's CI half-width exceeds that margin and its CI still reaches the floor (the data
do not show that it fails), the check reads `insufficient_eval`, with the number of eval rows that would
bring the half-width down to the margin: half-widths shrink as 1/sqrt(n), so n x (half-width/margin)^2.
A candidate whose whole CI is below the floor is shown to fail and is rejected whatever the split's
size; one whose lower bound reaches the floor passes whatever the size.

A candidate passes only when every check passes; each failed check is a stable reason code:
- ci_low_below_threshold: the lower CI bound of the primary metric is below `min_score`, or (gold) below
  the teacher's score minus `max_drop_vs_teacher`.
- agreement_below_target: (teacher) the lower CI bound of the primary metric is below `min_agreement`.
- insufficient_eval: the criterion above failed but the eval split is too small to tell (power check).
- slice_below_floor:<slice>: a slice with >= `slice_min_examples` examples scores below its floor
  (`slice_floors[slice]`, else `slice_floor`).
- format_validity_below_threshold: the share of well-formed answers is below `min_format_validity`.
- inferior_to_champion: the lower CI bound of (candidate - champion), from paired bootstrap draws, is
  below -`champion_margin`: the data cannot rule out a drop larger than the margin.
- not_cheaper_enough: cost per 1k requests above (1 - `min_cost_reduction`) x the teacher's.
- cost_unknown: the candidate's or the teacher's cost could not be measured (unknown is not cheap).
- primary_metric_missing: the candidate has no value for the primary metric.
Among passing candidates the cheapest wins (ties: higher primary score, then name): "promote". With no
passing candidate the champion stays: "insufficient_eval" when some candidate failed only for want of
eval rows (more data could promote it), else "reject". flywheel/evaluate/partial.py wraps this gate:
with no full pass, a calibrated student/teacher cascade may still win ("promote_partial").
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from flywheel.config import GateConfig
from flywheel.evaluate.bootstrap import Estimate, paired_difference
from flywheel.evaluate.runner import LOWER_IS_BETTER, ModelResult

EPS = 1e-12
PROMOTE, REJECT, INSUFFICIENT_EVAL = "promote", "reject", "insufficient_eval"
PROMOTE_PARTIAL = "promote_partial"  # flywheel/evaluate/partial.py: a calibrated student/teacher cascade
DECISIONS = (PROMOTE, PROMOTE_PARTIAL, REJECT, INSUFFICIENT_EVAL)
REFERENCES = ("gold", "teacher")
NON_INFERIOR, AGREEMENT, NO_CRITERION = "non_inferior_to_teacher", "agreement", "none"


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
    rows_needed: int | None = None  # insufficient_eval: eval rows that would resolve the margin


@dataclass(frozen=True, slots=True)
class GateTarget:
    """The quality criterion under the evaluation's reference, shown in every report.

    floor: what the primary metric's CI lower bound must reach (None: no criterion beyond min_score);
    margin: what the eval split must be able to resolve (the power check), see the module docstring.
    """

    reference: str
    criterion: str
    metric: str
    floor: float | None
    margin: float | None
    teacher: float | None = None
    min_agreement: float | None = None
    max_drop_vs_teacher: float | None = None
    min_score: float | None = None

    @property
    def text(self) -> str:
        if self.criterion == AGREEMENT:
            main = f"agreement with the teacher ({self.metric}) CI low >= {self.floor:.3f}"
        elif self.criterion == NON_INFERIOR:
            main = (
                f"{self.metric} CI low >= {self.floor:.3f} (teacher {self.teacher:.3f} - "
                f"max_drop_vs_teacher {self.max_drop_vs_teacher:.3f})"
            )
        else:
            main = f"{self.metric}: no criterion relative to the teacher"
        floor = f"; min_score {self.min_score:.3f}" if self.min_score is not None else ""
        power = f"; eval must resolve +/-{self.margin:.3f}" if self.margin else ""
        return f"{main}{floor}{power} (reference: {self.reference})"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


@dataclass
class GateDecision:
    decision: str  # promote | promote_partial | reject | insufficient_eval
    winner: str | None
    champion: str | None  # the champion after this decision
    primary_metric: str
    reasons: list[str]
    checks: list[GateCheck] = field(default_factory=list)
    target: GateTarget | None = None
    summary: str = ""
    eval_rows_needed: int | None = None
    cascade: dict[str, Any] | None = None  # promote_partial: the winner's threshold, coverage, claims
    cascades: list[dict[str, Any]] = field(default_factory=list)  # every candidate's coverage curve

    def failures(self, model: str) -> list[str]:
        return [c.code for c in self.checks if c.model == model and not c.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "winner": self.winner,
            "champion": self.champion,
            "primary_metric": self.primary_metric,
            "reasons": list(self.reasons),
            "summary": self.summary,
            "eval_rows_needed": self.eval_rows_needed,
            "target": self.target.as_dict() if self.target is not None else None,
            "checks": [asdict(c) for c in self.checks],
            "cascade": self.cascade,
            "cascades": self.cascades,
        }


def decide(
    workload_gate: GateConfig,
    candidates: list[ModelResult],
    teacher: ModelResult,
    champion: ModelResult | None,
    *,
    reference: str = "gold",
) -> GateDecision:
    """Promote the cheapest candidate that passes every check, or keep the champion and say why."""
    metric = workload_gate.primary_metric or teacher.primary_metric
    if metric in LOWER_IS_BETTER:
        raise ValueError(f"gate primary_metric {metric!r} is lower-is-better; choose a score to maximise")
    target = gate_target(workload_gate, metric, teacher, reference)
    checks: list[GateCheck] = []
    passing, undecided = [], []
    for candidate in candidates:
        own = candidate_checks(workload_gate, target, candidate, teacher, champion)
        checks.extend(own)
        failed = {c.code for c in own if not c.passed}
        if not failed:
            passing.append(candidate)
        elif failed == {INSUFFICIENT_EVAL}:
            undecided.append(candidate)
    kept = champion.model if champion is not None else None
    if passing:
        winner = min(passing, key=lambda c: (c.cost_per_1k or 0.0, -_value(c, metric), c.model))
        summary = f"{winner.model} passed every check; target: {target.text}"
        return GateDecision(PROMOTE, winner.model, winner.model, metric, ["passed"], checks, target, summary)
    reasons = _unique(c.code for c in checks if not c.passed) or ["no_candidates"]
    if undecided:
        return _insufficient(metric, kept, reasons, checks, target)
    summary = "no candidate to judge" if not candidates else f"no candidate passed: {', '.join(reasons)}"
    return GateDecision(
        REJECT, None, kept, metric, reasons, checks, target, f"{summary}; target: {target.text}"
    )


def _insufficient(
    metric: str, kept: str | None, reasons: list[str], checks: list[GateCheck], target: GateTarget
) -> GateDecision:
    """No candidate passed, and at least one failed only because the eval split cannot tell."""
    short = [c for c in checks if c.code == INSUFFICIENT_EVAL]
    needed = max(c.rows_needed or 0 for c in short)
    reasons = [INSUFFICIENT_EVAL, *(r for r in reasons if r != INSUFFICIENT_EVAL)]
    widest = max(c.value or 0.0 for c in short)
    summary = (
        f"the eval split is too small to tell: {target.metric} CI half-width {widest:.4f} > margin "
        f"{target.margin or 0.0:.4f}; about {needed} eval rows would resolve it; target: {target.text}"
    )
    return GateDecision(INSUFFICIENT_EVAL, None, kept, metric, reasons, checks, target, summary, needed)


def gate_target(gate: GateConfig, metric: str, teacher: ModelResult, reference: str) -> GateTarget:
    """The criterion and the margin the eval split must resolve, by reference (module docstring)."""
    if reference not in REFERENCES:
        raise ValueError(f"gate reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
    if reference == "teacher":
        margin = (1.0 - gate.min_agreement) / 2
        return GateTarget(
            reference,
            AGREEMENT,
            metric,
            floor=gate.min_agreement,
            margin=margin,
            min_agreement=gate.min_agreement,
            min_score=gate.min_score,
        )
    teacher_value = _value(teacher, metric, default=None)
    drop = gate.max_drop_vs_teacher
    if drop is None or teacher_value is None:
        return GateTarget(
            reference, NO_CRITERION, metric, None, None, teacher_value, min_score=gate.min_score
        )
    return GateTarget(
        reference,
        NON_INFERIOR,
        metric,
        floor=teacher_value - drop,
        margin=drop,
        teacher=teacher_value,
        max_drop_vs_teacher=drop,
        min_score=gate.min_score,
    )


def candidate_checks(
    gate: GateConfig,
    target: GateTarget,
    candidate: ModelResult,
    teacher: ModelResult,
    champion: ModelResult | None,
) -> list[GateCheck]:
    """Every check of one candidate, passed or not, in a fixed order."""
    metric = target.metric
    primary = candidate.get(metric)
    if primary is None or primary.value is None or primary.ci_low is None:
        return [GateCheck(candidate.model, "primary_metric", False, "primary_metric_missing", detail=metric)]
    checks = _threshold_checks(gate, target, candidate, primary)
    checks += _slice_checks(gate, metric, candidate)
    checks.append(_format_check(gate, candidate))
    if champion is not None and champion.model != candidate.model:
        checks.append(_champion_check(gate, metric, candidate, champion))
    checks.append(_cost_check(gate, candidate, teacher))
    return checks


def _threshold_checks(
    gate: GateConfig, target: GateTarget, candidate: ModelResult, primary: Estimate
) -> list[GateCheck]:
    ci_low, metric = primary.ci_low or 0.0, target.metric  # candidate_checks saw a ci_low
    checks = []
    if gate.min_score is not None:
        ok = ci_low + EPS >= gate.min_score
        detail = f"{metric} ci_low {ci_low:.4f} vs min_score {gate.min_score:.4f}"
        checks.append(
            _check(candidate, "min_score", ok, "ci_low_below_threshold", ci_low, gate.min_score, detail)
        )
    if target.floor is not None:
        checks.append(_criterion_check(target, candidate, primary))
    return checks


def _criterion_check(target: GateTarget, candidate: ModelResult, primary: Estimate) -> GateCheck:
    """vs_teacher (gold) or agreement (teacher); an unresolvable failure becomes insufficient_eval."""
    ci_low, floor, metric = primary.ci_low or 0.0, target.floor or 0.0, target.metric
    if target.criterion == AGREEMENT:
        name, code = "agreement", "agreement_below_target"
        detail = f"agreement ({metric}) ci_low {ci_low:.4f} vs min_agreement {floor:.4f}"
    else:
        name, code = "vs_teacher", "ci_low_below_threshold"
        detail = (
            f"{metric} ci_low {ci_low:.4f} vs teacher {target.teacher:.4f} - "
            f"max_drop {target.max_drop_vs_teacher:.4f} = {floor:.4f}"
        )
    ok = ci_low + EPS >= floor
    if not ok:
        shortfall = _power_shortfall(target, name, candidate, primary)
        if shortfall is not None:
            return shortfall
    return _check(candidate, name, ok, code, ci_low, floor, detail)


def _power_shortfall(
    target: GateTarget, name: str, candidate: ModelResult, primary: Estimate
) -> GateCheck | None:
    """insufficient_eval when the CI is wider than the margin and still reaches the floor."""
    low, high, floor, margin = primary.ci_low, primary.ci_high, target.floor, target.margin
    if low is None or high is None or floor is None or not margin or margin <= 0:
        return None
    half = (high - low) / 2
    if half <= margin + EPS or high + EPS < floor:
        return None
    needed = rows_to_resolve(candidate.n, half, margin)
    detail = (
        f"{target.metric} {primary.value:.4f}, 95% CI {low:.4f} - {high:.4f} spans the floor {floor:.4f}; "
        f"CI half-width {half:.4f} > margin {margin:.4f} on {candidate.n} eval rows; "
        f"about {needed} eval rows would resolve it"
    )
    return GateCheck(candidate.model, name, False, INSUFFICIENT_EVAL, half, margin, detail, needed)


def rows_to_resolve(n: int, half_width: float, margin: float) -> int:
    """Eval rows at which a CI of `half_width` on `n` rows narrows to `margin` (width ~ 1/sqrt(n))."""
    if margin <= 0:
        raise ValueError("margin must be > 0")
    return max(n + 1, math.ceil(n * (half_width / margin) ** 2))


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
