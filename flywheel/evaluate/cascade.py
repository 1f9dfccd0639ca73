"""Cascade calibration: how much of the traffic a student can answer while the mix still meets the target.

`flywheel serve` answers a call with the student when its answer is valid, its confidence reaches the
workload's threshold and the student may claim the turn (flywheel/answers/claims.py: a student that
cannot write free text claims only tool-call turns); otherwise the teacher answers. On the eval split
the same rule, at a threshold t, splits the examples: the student's per-example metric statistics
where it answers, the teacher's where it does not (under reference "teacher" the teacher's own answer
is the reference, so it counts 1.0; under "gold" it counts its own gold score). The mix is scored by
the task's metric from those statistics, with the same seeded bootstrap as every other estimate (same
resamples, so its draws pair with the champion's), and coverage(t) is the share the student answers.

`calibrate` scores every candidate threshold (the distinct confidences of the claimable answers,
at most MAX_POINTS) and chooses the one with the largest coverage whose mixed CI lower bound meets the
gate's floor (and min_score): the same criterion as the full gate. Choosing among many thresholds on
one split favours the lucky ones a little; the power check's margin and the CI lower bound are what
keep that honest, and serve-time shadow agreement watches it afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from flywheel.answers.claims import ALL, claimed
from flywheel.evaluate.bootstrap import percentile_interval, weight_chunks
from flywheel.evaluate.runner import ModelResult, metric_module, score_estimates

EPS = 1e-12
MAX_POINTS = 200  # thresholds scored per candidate (distinct confidences, thinned evenly)
CURVE_POINTS = 21  # points of the coverage curve kept in reports


@dataclass(frozen=True, slots=True)
class CascadePoint:
    """The mix at one threshold: the student answers `claimed` of the examples (coverage)."""

    threshold: float
    coverage: float
    claimed: int
    value: float | None
    ci_low: float | None
    ci_high: float | None

    def meets(self, floor: float | None, min_score: float | None) -> bool:
        low = self.ci_low
        if low is None:
            return False
        return all(bound is None or low + EPS >= bound for bound in (floor, min_score))


@dataclass
class Cascade:
    """A candidate's coverage curve and the threshold chosen on it (None: no threshold meets the floor)."""

    model: str
    claims: str
    metric: str
    floor: float | None
    min_score: float | None
    points: list[CascadePoint] = field(default_factory=list)  # coverage descending

    def feasible(self) -> list[CascadePoint]:
        """Points whose mix meets the target, largest coverage first (ties: the better mix)."""
        good = [p for p in self.points if p.claimed and p.meets(self.floor, self.min_score)]
        return sorted(good, key=lambda p: (-p.coverage, -(p.ci_low or 0.0), p.threshold))

    @property
    def chosen(self) -> CascadePoint | None:
        found = self.feasible()
        return found[0] if found else None

    def as_dict(self) -> dict[str, Any]:
        chosen = self.chosen
        step = max(1, len(self.points) // (CURVE_POINTS - 1))
        curve = self.points[::step] + ([self.points[-1]] if (len(self.points) - 1) % step else [])
        return {
            "model": self.model,
            "claims": self.claims,
            "metric": self.metric,
            "floor": self.floor,
            "threshold": chosen.threshold if chosen else None,
            "coverage": chosen.coverage if chosen else 0.0,
            "value": chosen.value if chosen else None,
            "ci_low": chosen.ci_low if chosen else None,
            "ci_high": chosen.ci_high if chosen else None,
            "curve": [_point_dict(p) for p in curve],
        }


def claimable(result: ModelResult, claims: str = ALL) -> np.ndarray:
    """Per example: would serve let the student answer at some threshold (valid and claimed)?"""
    return np.array(
        [p.invalid_reason is None and claimed(p.message, claims) for p in result.predictions], dtype=bool
    )


def confidences(result: ModelResult) -> np.ndarray:
    """Per example confidence; +inf where the student reports none (serve never finds it unsure)."""
    return np.array(
        [np.inf if p.confidence is None else float(p.confidence) for p in result.predictions], dtype=float
    )


def claim_mask(result: ModelResult, threshold: float, claims: str = ALL) -> np.ndarray:
    """Per example: does the student answer at `threshold` (serve's rule: confidence >= threshold)?"""
    return claimable(result, claims) & (confidences(result) + EPS >= threshold)


def mixed_stats(student: ModelResult, teacher: ModelResult, mask: np.ndarray) -> dict[str, np.ndarray]:
    """The student's statistics where it answers, the teacher's elsewhere (same metric, same rows)."""
    columns = [c for c in student.stats if c in teacher.stats]
    return {c: np.where(mask, student.stats[c], teacher.stats[c]) for c in columns}


def calibrate(
    candidate: ModelResult,
    teacher: ModelResult,
    *,
    task: str,
    metric: str,
    floor: float | None,
    min_score: float | None = None,
    claims: str = ALL,
    n_resamples: int = 1000,
    seed: int = 0,
) -> Cascade:
    """The coverage curve of `candidate` cascaded with `teacher`, scored with bootstrap intervals."""
    if not candidate.stats or not teacher.stats or len(candidate.predictions) != candidate.n:
        raise ValueError(f"{candidate.model}: the cascade needs per-example statistics and predictions")
    cascade = Cascade(candidate.model, claims, metric, floor, min_score)
    ok, conf = claimable(candidate, claims), confidences(candidate)
    names = [c for c in candidate.stats if c in teacher.stats]
    mix = _RunningMix(names, teacher, candidate, list(weight_chunks(candidate.n, n_resamples, seed)))
    summarize = metric_module(task).summarize
    # thresholds from the highest down: each step only adds the examples it newly claims, so the whole
    # curve costs about one bootstrap of the split (not one per threshold)
    for threshold in reversed(candidate_thresholds(conf[ok])):
        mask = ok & (conf + EPS >= threshold)
        mix.claim(mask)
        cascade.points.append(mix.point(summarize, metric, threshold))
    cascade.points.reverse()
    return cascade


class _RunningMix:
    """Bootstrap and point column sums of the mix, updated as the claimed set grows."""

    def __init__(self, names: list[str], teacher: ModelResult, student: ModelResult, chunks: list) -> None:
        self.names = names
        base = np.column_stack([np.asarray(teacher.stats[c], dtype=float) for c in names])
        own = np.column_stack([np.asarray(student.stats[c], dtype=float) for c in names])
        self.delta = own - base  # what claiming an example changes in every statistic
        self.chunks = chunks
        self.sums = [weights @ base for weights in chunks]
        self.totals = base.sum(axis=0)
        self.claimed = np.zeros(len(base), dtype=bool)

    def claim(self, mask: np.ndarray) -> None:
        new = np.flatnonzero(mask & ~self.claimed)
        self.claimed = self.claimed | mask
        if new.size:
            for i, weights in enumerate(self.chunks):
                self.sums[i] += weights[:, new] @ self.delta[new]
            self.totals += self.delta[new].sum(axis=0)

    def point(self, summarize: Any, metric: str, threshold: float) -> CascadePoint:
        sums = np.vstack(self.sums)
        draws = summarize({name: sums[:, j] for j, name in enumerate(self.names)})[metric]
        value = summarize({name: self.totals[j : j + 1] for j, name in enumerate(self.names)})[metric][0]
        value = float(value) if np.isfinite(value) else None
        low, high = percentile_interval(draws) if value is not None else (None, None)
        claimed_n = int(self.claimed.sum())
        return CascadePoint(threshold, claimed_n / max(len(self.claimed), 1), claimed_n, value, low, high)


def candidate_thresholds(values: np.ndarray) -> list[float]:
    """One threshold per distinct finite confidence level, ascending (coverage descending), at most
    MAX_POINTS: 0 (claim everything claimable), then the midpoints between consecutive levels, so a
    recorded threshold sits between the answers it keeps and those it sends away, not on one of them
    (a confidence that moves in the last digits between evaluation and serving stays on its side)."""
    finite = np.unique(values[np.isfinite(values)])
    if finite.size > MAX_POINTS:
        keep = np.unique(np.linspace(0, finite.size - 1, MAX_POINTS).round().astype(int))
        finite = finite[keep]
    midpoints = (finite[:-1] + finite[1:]) / 2 if finite.size > 1 else np.array([])
    return [0.0, *(float(v) for v in midpoints)]


def served_view(
    candidate: ModelResult,
    teacher: ModelResult,
    mask: np.ndarray,
    *,
    task: str,
    slices: list[str | None],
    n_resamples: int,
    seed: int,
) -> ModelResult:
    """The candidate as serve would run it with this mask: every metric (overall, per slice, format
    validity) on the mix, draws paired with the other models'; speed and cost stay the student's."""
    stats = mixed_stats(candidate, teacher, mask)
    estimates, draws = score_estimates(stats, task, slices, n_resamples, seed)
    coverage = float(mask.mean()) if len(mask) else 0.0
    return replace(
        candidate,
        estimates=estimates,
        draws=draws,
        stats=stats,
        extras={**candidate.extras, "coverage": coverage},
    )


def _point_dict(point: CascadePoint) -> dict[str, Any]:
    return {
        "threshold": round(point.threshold, 6),
        "coverage": round(point.coverage, 6),
        "value": point.value,
        "ci_low": point.ci_low,
    }
