"""Classification metrics: accuracy, macro-F1, per-class F1, confusion matrix, format validity.

Loaded with `evaluate.load(<this directory>)`. Predictions and references are label strings; a
prediction that is empty (pass "" rather than None: a batch that starts with None fails the Arrow
schema) or outside `labels` is invalid: it is wrong for accuracy, a false negative for
the true class, and a false positive for no class (it lands in the confusion matrix's "<invalid>"
column). Macro-F1 averages the per-class F1 of the classes that occur in the references or the valid
predictions (scikit-learn's default label set).

Every metric is a function of sums of per-example statistics (`return_stats=True` returns them), so
`summarize(sums)` recomputes the metrics for any resample: that is what the bootstrap uses.
"""

from typing import Any

import datasets
import evaluate
import numpy as np

INVALID = "<invalid>"


class Classification(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description='predictions: label or ""; references: label; labels: the label set',
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[str],
        labels: list[str] | None = None,
        return_stats: bool = False,
    ) -> dict[str, Any]:
        classes = sorted(set(labels or []) | set(references))
        known = set(labels) if labels else None
        cleaned = [p if p and (known is None or p in known) else None for p in predictions]
        stats = per_example_stats(cleaned, references, classes)
        sums = {name: np.array([column.sum()], dtype=float) for name, column in stats.items()}
        result = {name: _scalar(values) for name, values in self.summarize(sums).items()}
        result["confusion_matrix"] = confusion_matrix(cleaned, references, classes)
        if return_stats:
            result["stats"] = stats
        return result

    def summarize(self, sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Metrics from column sums; each value is an array over resamples."""
        n = sums["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {"accuracy": sums["correct"] / n, "format_validity": sums["valid"] / n}
            f1s = []
            for name in sums:
                if name.startswith("tp:"):
                    label = name[3:]
                    tp, fp, fn = sums[name], sums["fp:" + label], sums["fn:" + label]
                    denominator = 2 * tp + fp + fn
                    f1 = np.where(denominator > 0, 2 * tp / np.where(denominator > 0, denominator, 1), np.nan)
                    out["class_f1:" + label] = f1
                    f1s.append(f1)
            stacked = np.vstack(f1s) if f1s else np.full((1, len(n)), np.nan)
            present = ~np.isnan(stacked)
            total = np.where(present, stacked, 0.0).sum(axis=0)
            count = present.sum(axis=0)
            out["macro_f1"] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return out


def per_example_stats(
    predictions: list[str | None], references: list[str], classes: list[str]
) -> dict[str, np.ndarray]:
    """Per-example indicator columns: n, correct, valid and tp/fp/fn for every class."""
    pred = np.array([p if p is not None else INVALID for p in predictions], dtype=object)
    ref = np.array(references, dtype=object)
    stats = {
        "n": np.ones(len(ref)),
        "correct": (pred == ref).astype(float),
        "valid": (pred != INVALID).astype(float),
    }
    for label in classes:
        is_pred, is_ref = pred == label, ref == label
        stats["tp:" + label] = (is_pred & is_ref).astype(float)
        stats["fp:" + label] = (is_pred & ~is_ref).astype(float)
        stats["fn:" + label] = (~is_pred & is_ref).astype(float)
    return stats


def confusion_matrix(
    predictions: list[str | None], references: list[str], classes: list[str]
) -> dict[str, Any]:
    """Counts of (reference row, prediction column); the last column counts invalid predictions."""
    columns = [*classes, INVALID]
    index = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in classes]
    for pred, ref in zip(predictions, references, strict=True):
        matrix[index[ref]][index[pred if pred is not None else INVALID]] += 1
    return {"labels": list(classes), "columns": columns, "matrix": matrix}


def _scalar(values: np.ndarray) -> float | None:
    value = float(values[0])
    return None if np.isnan(value) else value
