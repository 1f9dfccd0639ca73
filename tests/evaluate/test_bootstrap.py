from __future__ import annotations

import numpy as np
import pytest

from flywheel.evaluate.bootstrap import (
    estimate,
    estimate_by_slice,
    paired_difference,
    percentile_interval,
    resample_weights,
)


def accuracy(sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"accuracy": sums["correct"] / sums["n"], "undefined": sums["correct"] / sums["zero"]}


def bernoulli(n: int, p: float, seed: int = 1) -> dict[str, np.ndarray]:
    correct = (np.random.default_rng(seed).random(n) < p).astype(float)
    return {"n": np.ones(n), "correct": correct, "zero": np.zeros(n)}


def test_percentile_interval_known_answer() -> None:
    draws = np.arange(0, 1001, dtype=float)
    assert percentile_interval(draws) == pytest.approx((25.0, 975.0))
    assert percentile_interval(np.array([np.nan, 1.0, 1.0])) == (1.0, 1.0)  # NaN draws are ignored
    assert percentile_interval(np.array([np.nan])) == (None, None)


def test_resample_weights_are_draw_counts() -> None:
    weights = resample_weights(50, 200, np.random.default_rng(0))
    assert weights.shape == (200, 50)
    assert (weights.sum(axis=1) == 50).all()
    assert abs(weights.mean() - 1.0) < 1e-12


def test_interval_width_matches_the_binomial_standard_error() -> None:
    stats = bernoulli(400, 0.75)
    [acc, _], _ = estimate(stats, accuracy, n_resamples=2000, seed=0)
    p = acc.value
    expected = 2 * 1.96 * np.sqrt(p * (1 - p) / 400)
    assert acc.ci_low < p < acc.ci_high
    assert acc.ci_high - acc.ci_low == pytest.approx(expected, rel=0.15)


def test_constant_scores_have_a_zero_width_interval_and_undefined_metrics_none() -> None:
    stats = {"n": np.ones(30), "correct": np.ones(30), "zero": np.zeros(30)}
    estimates, _ = estimate(stats, accuracy, n_resamples=100)
    by_name = {e.metric: e for e in estimates}
    assert (by_name["accuracy"].value, by_name["accuracy"].ci_low, by_name["accuracy"].ci_high) == (
        1.0,
        1.0,
        1.0,
    )
    assert by_name["undefined"].value is None and by_name["undefined"].ci_low is None


def test_seeded_and_reproducible_and_narrower_with_more_data() -> None:
    small = bernoulli(100, 0.8)
    first, _ = estimate(small, accuracy, n_resamples=300, seed=5)
    again, _ = estimate(small, accuracy, n_resamples=300, seed=5)
    other, _ = estimate(small, accuracy, n_resamples=300, seed=6)
    assert first == again and first != other
    big, _ = estimate(bernoulli(1600, 0.8), accuracy, n_resamples=300, seed=5)
    assert big[0].ci_high - big[0].ci_low < (first[0].ci_high - first[0].ci_low) / 2


def test_per_slice_estimates() -> None:
    correct = np.array([1, 1, 1, 1, 0, 0, 1, 0], dtype=float)
    stats = {"n": np.ones(8), "correct": correct, "zero": np.zeros(8)}
    slices = ["a", "a", "a", "a", "b", "b", "b", None]
    estimates, _ = estimate_by_slice(stats, accuracy, slices, metrics=["accuracy"], n_resamples=200)
    values = {(e.slice, e.metric): (e.value, e.n) for e in estimates}
    assert values == {
        (None, "accuracy"): (5 / 8, 8),
        ("a", "accuracy"): (1.0, 4),
        ("b", "accuracy"): (1 / 3, 3),
    }


def test_paired_difference_uses_the_same_resamples() -> None:
    stats = bernoulli(300, 0.9)
    worse = dict(stats, correct=stats["correct"] * (np.arange(300) % 10 != 0))
    _, draws_a = estimate(stats, accuracy, n_resamples=500, seed=2)
    _, draws_same = estimate(stats, accuracy, n_resamples=500, seed=2)
    _, draws_b = estimate(worse, accuracy, n_resamples=500, seed=2)
    assert paired_difference(draws_a["accuracy"], draws_same["accuracy"], 0.9, 0.9) == (0.0, 0.0, 0.0)
    diff, low, high = paired_difference(
        draws_b["accuracy"], draws_a["accuracy"], worse["correct"].mean(), stats["correct"].mean()
    )
    assert diff < 0 and low < diff < high < 0  # always worse on the same resamples
    with pytest.raises(ValueError, match="same resamples"):
        paired_difference(draws_a["accuracy"], draws_a["accuracy"][:10], 0.0, 0.0)
