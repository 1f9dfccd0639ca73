"""Percentile bootstrap confidence intervals, seeded, overall and per slice.

Every metric is a function of column sums of per-example statistics (see the metric modules'
`summarize`), so one resample is a weight vector (how often each example was drawn) and its sums are a
matrix product. The resample weights depend only on (seed, slice, n): two models scored on the same
examples see the same resamples, which makes their bootstrap draws paired, so a difference between
models gets an honest interval too (`paired_difference`).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

Stats = Mapping[str, np.ndarray]
Summarize = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
DEFAULT_RESAMPLES = 1000
MAX_WEIGHT_CELLS = 4_000_000  # resample-weight matrix cells held at once (32 MB of float64)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric's point value and its bootstrap interval; None where the metric is undefined."""

    metric: str
    slice: str | None
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int

    def as_dict(self) -> dict[str, object]:
        return {
            "metric": self.metric,
            "slice": self.slice,
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n": self.n,
        }


def slice_seed(seed: int, slice_name: str | None) -> int:
    """A stable per-slice seed, the same in every process (no hash randomisation)."""
    return (seed * 1_000_003 + zlib.crc32((slice_name or "").encode())) % 2**32


def resample_weights(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(n_resamples, n) draw counts: row r says how often each example appears in resample r."""
    draws = rng.integers(0, n, size=(n_resamples, n))
    offsets = (np.arange(n_resamples) * n)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n)
    return counts.reshape(n_resamples, n).astype(float)


def bootstrap_draws(
    stats: Stats, summarize: Summarize, *, n_resamples: int, seed: int, slice_name: str | None = None
) -> dict[str, np.ndarray]:
    """Every metric recomputed on `n_resamples` resamples: metric -> array (n_resamples,)."""
    names = list(stats)
    matrix = np.column_stack([np.asarray(stats[name], dtype=float) for name in names])
    chunks = weight_chunks(matrix.shape[0], n_resamples, seed, slice_name)
    sums = np.vstack([weights @ matrix for weights in chunks])
    return summarize({name: sums[:, j] for j, name in enumerate(names)})


def weight_chunks(n: int, n_resamples: int, seed: int, slice_name: str | None = None) -> Iterator[np.ndarray]:
    """The resample weights of (seed, slice, n), in row chunks of at most MAX_WEIGHT_CELLS cells.

    Every caller with the same (seed, slice, n) gets the same resamples: that is what pairs draws."""
    rng = np.random.default_rng(slice_seed(seed, slice_name))
    chunk = max(1, MAX_WEIGHT_CELLS // max(n, 1))
    for start in range(0, n_resamples, chunk):
        yield resample_weights(n, min(chunk, n_resamples - start), rng)


def point_values(stats: Stats, summarize: Summarize) -> dict[str, float | None]:
    sums = {name: np.array([np.asarray(column, dtype=float).sum()]) for name, column in stats.items()}
    return {name: _finite(values[0]) for name, values in summarize(sums).items()}


def percentile_interval(draws: np.ndarray, confidence: float = 0.95) -> tuple[float | None, float | None]:
    """The central `confidence` interval of the finite draws (None, None) when there are none."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None, None
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def estimate(
    stats: Stats,
    summarize: Summarize,
    *,
    slice_name: str | None = None,
    metrics: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[list[Estimate], dict[str, np.ndarray]]:
    """Point values and percentile intervals for every metric of one (sub)set of examples.

    Returns the estimates and the bootstrap draws (metric -> array), kept for paired comparisons.
    """
    n = len(next(iter(stats.values()))) if stats else 0
    if n == 0:
        return [], {}
    values = point_values(stats, summarize)
    draws = bootstrap_draws(stats, summarize, n_resamples=n_resamples, seed=seed, slice_name=slice_name)
    estimates = []
    for metric in metrics or list(values):
        low, high = (
            percentile_interval(draws[metric], confidence) if values[metric] is not None else (None,) * 2
        )
        estimates.append(Estimate(metric, slice_name, values[metric], low, high, n))
    return estimates, draws


def estimate_by_slice(
    stats: Stats,
    summarize: Summarize,
    slices: Sequence[str | None],
    *,
    metrics: Sequence[str] | None = None,
    slice_metrics: Sequence[str] | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[list[Estimate], dict[str, np.ndarray]]:
    """Estimates overall (slice None) and for every named slice; draws of the overall resamples.

    `slice_metrics` (default: `metrics`) limits what is estimated per slice.
    """
    overall, draws = estimate(
        stats, summarize, metrics=metrics, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    labels = np.array([s if s is not None else "" for s in slices], dtype=object)
    out = list(overall)
    for name in sorted({s for s in slices if s is not None}):
        mask = labels == name
        subset = {column: np.asarray(values)[mask] for column, values in stats.items()}
        part, _ = estimate(
            subset,
            summarize,
            slice_name=name,
            metrics=slice_metrics if slice_metrics is not None else metrics,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        out.extend(part)
    return out, draws


def paired_difference(
    draws_a: np.ndarray, draws_b: np.ndarray, value_a: float, value_b: float, confidence: float = 0.95
) -> tuple[float, float | None, float | None]:
    """(a - b, ci_low, ci_high) from paired draws (same seed, same examples)."""
    if draws_a.shape != draws_b.shape:
        raise ValueError("paired draws must come from the same resamples (same examples and seed)")
    low, high = percentile_interval(draws_a - draws_b, confidence)
    return value_a - value_b, low, high


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
