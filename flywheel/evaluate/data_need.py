"""How much data would reach the gate: a saturating power law fitted to the student's learning curve.

Training records the candidate's learning curve (val agreement of the same student trained on nested
25% / 50% / 100% of train: flywheel.train.search). Here `score(n) = a - b * n^-c` is fitted to those
points (a grid over c in [0.05, 1], least squares for a and b, a <= 1), and solved for the n where the score
reaches the gate's target (min_agreement under reference teacher, else the teacher's score minus
max_drop_vs_teacher). Uncertainty: a parametric bootstrap over the val draws (each point's score
redrawn as Binomial(val examples, score)); `records_needed` is the median over draws and
`records_needed_range` the 10th-90th percentiles. When the asymptote `a` of most draws stays below the
target (or the answer is beyond MAX_EXTRAPOLATION x the data), the target is "not reachable with
this student". The curve is scored on val, so it answers "where does the point estimate reach the
target"; the gate also needs the eval split's CI to clear it (see eval_rows_needed).
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
REACHED, ESTIMATED, UNREACHABLE, UNKNOWN = "reached", "estimated", "not_reachable", "unknown"


def fit_power_law(ns: np.ndarray, scores: np.ndarray) -> tuple[float, float, float]:
    """(a, b, c) of score = a - b * n^-c with a <= 1 and b >= 0, least squares over a grid of c."""
    best: tuple[float, tuple[float, float, float]] | None = None
    for c in C_GRID:
        x = ns.astype(float) ** -c
        a, b = _linear_fit(x, scores)
        sse = float(((a - b * x - scores) ** 2).sum())
        if best is None or sse < best[0] - 1e-12:
            best = (sse, (a, b, float(c)))
    assert best is not None
    return best[1]


def _linear_fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least squares y = a - b x under a <= 1 and b >= 0."""
    design = np.column_stack([np.ones_like(x), -x])
    (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
    if b < 0:  # flat or falling: the curve says more data does not help
        return float(y.mean()), 0.0
    if a > 1:  # agreement cannot pass 1: pin the asymptote there
        b = float(((1 - y) * x).sum() / (x * x).sum())
        return 1.0, max(b, 0.0)
    return float(a), float(b)


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
    """records_needed (training records) for the curve `points` ({n, score, total}) to reach `target`."""
    points = sorted(points, key=lambda p: p["n"])
    curve = [[int(p["n"]), float(p["score"])] for p in points]
    out: dict[str, Any] = {"target": round(target, 4), "records_needed": None, "curve": curve}
    if len({p["n"] for p in points}) < 2:
        return out | {"status": UNKNOWN, "note": "a learning curve needs at least two training sizes"}
    ns = np.array([p["n"] for p in points], dtype=float)
    scores = np.array([p["score"] for p in points], dtype=float)
    current = int(ns[-1])
    params = fit_power_law(ns, scores)
    out["fit"] = {"a": round(params[0], 4), "b": round(params[1], 4), "c": round(params[2], 3)}
    out["current_records"] = current
    if scores[-1] >= target:
        note = "the full training set already reaches the target on val"
        return out | {"status": REACHED, "records_needed": current, "note": note}
    draws = _bootstrap(points, target, current * MAX_EXTRAPOLATION, resamples, seed)
    finite = draws[np.isfinite(draws)]
    out["reachable_share"] = round(len(finite) / len(draws), 3)
    if len(finite) * 2 <= len(draws):
        note = (
            f"not reachable with this student: the curve flattens near {params[0]:.3f} "
            f"(< target {target:.3f}); {len(finite) / len(draws):.0%} of bootstrap draws reach it "
            f"within {MAX_EXTRAPOLATION}x the data"
        )
        return out | {"status": UNREACHABLE, "note": note}
    # No interpolation: draws that never reach the target are +inf, and more than half are finite.
    needed = float(np.percentile(draws, 50, method="lower"))
    low, high = (float(np.percentile(draws, q, method="higher")) for q in (10, 90))
    out["records_needed"] = max(current, _round(needed))
    out["records_needed_range"] = [max(current, _round(low)), None if np.isinf(high) else _round(high)]
    return out | {"status": ESTIMATED, "note": f"about {out['records_needed']} training records"}


def _bootstrap(
    points: list[dict[str, Any]], target: float, n_max: float, resamples: int, seed: int
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ns = np.array([p["n"] for p in points], dtype=float)
    totals = np.array([max(1, int(p.get("total") or 100)) for p in points])
    scores = np.array([p["score"] for p in points], dtype=float)
    draws = np.empty(resamples)
    for index in range(resamples):
        redrawn = rng.binomial(totals, np.clip(scores, 0, 1)) / totals
        draws[index] = records_for(fit_power_law(ns, redrawn), target, n_max)
    return draws


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
