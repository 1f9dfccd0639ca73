"""How much data would reach the gate: a saturating power law fitted to the student's learning curve.

Training records the candidate's learning curve: val agreement of the same student trained on nested
fractions of train (flywheel.train.search), with which val examples each point got right. Here
`score(n) = a - b * n^-c` is fitted to those points by weighted least squares (each point weighted by
the inverse of its binomial variance; a <= 1, b >= 0, c on a grid over [0.05, 1]) and solved for the
n where the score reaches the gate's target (min_agreement under reference teacher, else the
teacher's score minus max_drop_vs_teacher).

Uncertainty: a bootstrap over the val examples. The points share one val set, so each draw resamples
example indices once for every point (keeping the points' correlation); curves recorded without
per-example results fall back to redrawing each score as Binomial(val examples, score).
`records_needed` is the median over draws, `records_needed_range` the 10th-90th percentiles.

The ceiling of a short curve is barely identified (a slow exponent with a high asymptote fits three
points as well as a fast one with a low asymptote), so "not reachable with this student" needs the
evidence to say so: the 95th percentile over draws of the score the curve reaches at
MAX_EXTRAPOLATION x the data (its practical ceiling) is below the target. When the ceiling may clear
the target but the median draw does not reach it within that horizon, the status is "uncertain" and
the note gives the lower bound. The curve is scored on val, so it answers "where does the point
estimate reach the target"; the gate also needs the eval split's CI to clear it (see eval_rows_needed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# Exponents of real learning curves sit well below 1 (Hestness et al. 2017: 0.07-0.35 for error);
# nothing learns faster than the parametric 1/n. A steeper fit is the small-data knee (a fraction with
# about one example per class), not the curve's tail: c is bounded to [0.05, 1].
C_GRID = np.linspace(0.05, 1.0, 39)
MAX_EXTRAPOLATION = 100  # beyond 100x the training data, an estimate is no longer one
RESAMPLES = 400
CEILING_QUANTILE = 95  # "not reachable" when even this percentile of the ceiling is below the target
REACHED, ESTIMATED, UNREACHABLE, UNCERTAIN, UNKNOWN = (
    "reached", "estimated", "not_reachable", "uncertain", "unknown"
)  # fmt: skip


def point_weights(scores: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """1 / binomial variance of each point's score; Laplace-smoothed so a perfect score is not exact."""
    smoothed = (scores * totals + 1) / (totals + 2)
    return totals / (smoothed * (1 - smoothed))


def fit_curves(ns: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(a, b, c) per row of `scores` (shape draws x points): weighted least squares of
    score = a - b * n^-c under a <= 1 and b >= 0, best c of C_GRID. Returns shape (draws, 3)."""
    scores = np.atleast_2d(scores)
    w = weights / weights.sum()
    best_sse = np.full(len(scores), np.inf)
    best = np.zeros((len(scores), 3))
    for c in C_GRID:
        a, b = _weighted_fit(ns.astype(float) ** -c, scores, w)
        sse = (w * (a[:, None] - b[:, None] * ns.astype(float) ** -c - scores) ** 2).sum(axis=1)
        better = sse < best_sse - 1e-15
        best_sse[better] = sse[better]
        best[better] = np.column_stack([a, b, np.full(len(a), c)])[better]
    return best


def _weighted_fit(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares y = a - b x for each row of y, under a <= 1 and b >= 0."""
    xm, ym = (w * x).sum(), (y * w).sum(axis=1)
    sxx = (w * (x - xm) ** 2).sum()
    slope = ((y - ym[:, None]) * (w * (x - xm))).sum(axis=1) / sxx  # dy/dx = -b
    b, a = -slope, ym - slope * xm
    flat = b < 0  # flat or falling: the curve says more data does not help
    a, b = np.where(flat, ym, a), np.where(flat, 0.0, b)
    capped = a > 1  # agreement cannot pass 1: pin the asymptote there
    b_capped = np.maximum(((1 - y) * w * x).sum(axis=1) / (w * x * x).sum(), 0.0)
    return np.where(capped, 1.0, a), np.where(capped, b_capped, b)


def fit_power_law(
    ns: np.ndarray, scores: np.ndarray, totals: np.ndarray | None = None
) -> tuple[float, float, float]:
    """(a, b, c) of score = a - b * n^-c for one curve (weighted when `totals` are given)."""
    totals = np.full(len(ns), 100.0) if totals is None else totals.astype(float)
    a, b, c = fit_curves(ns, scores, point_weights(scores, totals))[0]
    return float(a), float(b), float(c)


def records_for(params: tuple[float, float, float], target: float, n_max: float) -> float:
    """The n where the fitted curve reaches `target` (inf when it never does within n_max)."""
    a, b, c = params
    if a <= target:
        return float("inf")
    if b == 0:
        return 0.0
    n = (b / (a - target)) ** (1 / c)
    return float(n) if n <= n_max else float("inf")


def estimate(
    points: list[dict[str, Any]], target: float, *, resamples: int = RESAMPLES, seed: int = 0
) -> dict[str, Any]:
    """records_needed (training records) for the curve `points` ({n, score, total[, hits]}) to reach
    `target`; `hits` is a string of 0/1 per val example, in the same example order for every point."""
    points = sorted(points, key=lambda p: p["n"])
    curve = [[int(p["n"]), float(p["score"])] for p in points]
    out: dict[str, Any] = {"target": round(target, 4), "records_needed": None, "curve": curve}
    if len({p["n"] for p in points}) < 2:
        return out | {"status": UNKNOWN, "note": "a learning curve needs at least two training sizes"}
    ns = np.array([p["n"] for p in points], dtype=float)
    scores = np.array([p["score"] for p in points], dtype=float)
    totals = np.array([max(1, int(p.get("total") or 100)) for p in points], dtype=float)
    current, horizon = int(ns[-1]), ns[-1] * MAX_EXTRAPOLATION
    weights = point_weights(scores, totals)
    a, b, c = (float(v) for v in fit_curves(ns, scores, weights)[0])
    out["fit"] = {"a": round(a, 4), "b": round(b, 4), "c": round(c, 3)}
    out["current_records"] = current
    if scores[-1] >= target:
        note = "the full training set already reaches the target on val"
        return out | {"status": REACHED, "records_needed": current, "note": note}
    params = fit_curves(ns, _resampled(points, scores, totals, resamples, seed), weights)
    ceilings = params[:, 0] - params[:, 1] * horizon ** -params[:, 2]
    needed = np.array([records_for(tuple(row), target, horizon) for row in params])
    return out | _verdict(needed, ceilings, target, current)


def _verdict(needed: np.ndarray, ceilings: np.ndarray, target: float, current: int) -> dict[str, Any]:
    """Status, records and note from the bootstrap draws (inf: the draw never reaches the target)."""
    finite = needed[np.isfinite(needed)]
    ceiling = [round(float(np.percentile(ceilings, q)), 4) for q in (5, 50, CEILING_QUANTILE)]
    out: dict[str, Any] = {"reachable_share": round(len(finite) / len(needed), 3), "ceiling": ceiling}
    horizon = f"{MAX_EXTRAPOLATION}x the data"
    if ceiling[2] < target:
        note = (
            f"not reachable with this student: at {horizon} the curve reaches {ceiling[1]:.3f} "
            f"({CEILING_QUANTILE}th percentile {ceiling[2]:.3f} < target {target:.3f})"
        )
        return out | {"status": UNREACHABLE, "note": note}
    low = max(current, _round(float(np.percentile(needed, 10, method="higher"))))
    if len(finite) * 2 <= len(needed):
        note = (
            f"uncertain: the curve may reach the target ({CEILING_QUANTILE}th percentile of its ceiling "
            f"{ceiling[2]:.3f}) but most draws need more than {horizon}; at least ~{low} training records"
        )
        return out | {"status": UNCERTAIN, "records_needed_at_least": low, "note": note}
    # No interpolation: draws that never reach the target are +inf, and more than half are finite.
    high = float(np.percentile(needed, 90, method="higher"))
    middle = max(current, _round(float(np.percentile(needed, 50, method="lower"))))
    span = [low, None if np.isinf(high) else max(current, _round(high))]
    return out | {"status": ESTIMATED, "records_needed": middle, "records_needed_range": span,
                  "note": f"about {middle} training records"}  # fmt: skip


def _resampled(
    points: list[dict[str, Any]], scores: np.ndarray, totals: np.ndarray, resamples: int, seed: int
) -> np.ndarray:
    """Bootstrap scores (resamples x points). Val examples are resampled jointly when every point has
    its per-example `hits` over one val set; each point then also gets independent noise of its
    binomial size, standing in for training noise (one seed per point cannot measure it; across
    seeds, fine-tuned encoders on small data vary about as much as a val split of this size does).
    Without hits, each score is redrawn from its binomial."""
    rng = np.random.default_rng(seed)
    hits = [p.get("hits") for p in points]
    if all(isinstance(h, str) and h for h in hits) and len({len(h) for h in hits}) == 1:  # type: ignore[arg-type]
        matrix = np.array([[ch == "1" for ch in h] for h in hits], dtype=float)  # type: ignore[union-attr]
        index = rng.integers(0, matrix.shape[1], size=(resamples, matrix.shape[1]))
        spread = np.sqrt(np.clip(scores * (1 - scores), 1e-4, None) / totals)
        jitter = rng.normal(0.0, spread, size=(resamples, len(scores)))
        return np.clip(matrix[:, index].mean(axis=2).T + jitter, 0.0, 1.0)
    return rng.binomial(totals.astype(int), np.clip(scores, 0, 1), size=(resamples, len(scores))) / totals


def _round(n: float) -> int:
    """Two significant figures: an estimate, not a count."""
    if n <= 0 or not np.isfinite(n):
        return 0
    digits = max(0, int(np.floor(np.log10(n))) - 1)
    return int(round(n / 10**digits) * 10**digits)


def data_need_for(
    target: float | None,
    scored: dict[str, float | None],
    curves: dict[str, dict[str, Any] | None],
    *,
    winner: str | None = None,
    rare_slices: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """The estimate for the winner, else the best-scoring candidate that has a learning curve.

    scored: candidate model id -> its primary metric on eval; curves: model id -> the manifest's
    `learning_curve` (None when training did not record one).
    """
    with_curve = [m for m, curve in curves.items() if curve and curve.get("points")]
    if target is None or not with_curve:
        return None
    model = winner if winner in with_curve else max(with_curve, key=lambda m: scored.get(m) or 0.0)
    curve = curves[model] or {}
    result = estimate(curve["points"], target)
    return {
        "model": model,
        **result,
        "curve_metric": curve.get("metric"),
        "unit": "training records (curated train split)",
        "rare_slices": rare_slices or [],
    }


def rare_slices(warehouse: Any, workload_id: str, snapshot_id: str | None) -> list[dict[str, Any]]:
    """Slices curation flagged as rare in the snapshot: where more (or synthetic) data helps first."""
    if snapshot_id is None:
        return []
    rows = warehouse.read(
        lambda con: con.execute(
            "SELECT slice_kind, slice, max(n_after) FROM slice_stats WHERE workload_id = ? "
            "AND snapshot_id = ? AND rare GROUP BY slice_kind, slice ORDER BY 3, 2",
            [workload_id, snapshot_id],
        ).fetchall()
    )
    return [{"kind": kind, "slice": name, "n": int(n)} for kind, name, n in rows]
