"""Extraction metrics: JSON validity, field-level precision/recall/F1, exact match, hallucination rate.

Loaded with `evaluate.load(<this directory>)`. Predictions and references are JSON objects as strings;
a prediction that is empty (pass "" rather than None: a batch that starts with None fails the Arrow
schema) or not a JSON object extracted nothing. `valid` (optional, one bool per
example) says whether the prediction satisfied the schema; without it, any JSON object is valid.

Fields: every non-null scalar at a dotted path is one field ("order_id", "address.city"); a list
contributes one field per element at "path[]" (an element is compared whole, so an item with the right
SKU and the wrong quantity is one false positive and one false negative). A null and a missing key
are the same (no value). Field scores are micro averages over all examples; exact match means the same
fields with the same values. Strings are compared after trimming outer whitespace.

Hallucination rate (needs `inputs`, the text the values must come from): the share of the scalar
values in the predictions (strings and numbers, list elements included) that do not occur in the input,
case-insensitively and with whitespace collapsed.

Every metric is a function of sums of per-example statistics, so `summarize(sums)` recomputes them for
any resample: that is what the bootstrap uses.
"""

import json
import re
from collections import Counter
from typing import Any

import datasets
import evaluate
import numpy as np

SPACES = re.compile(r"\s+")


class Extraction(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions/references: JSON objects as strings; valid, inputs: optional",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[str],
        valid: list[bool] | None = None,
        inputs: list[str] | None = None,
        return_stats: bool = False,
    ) -> dict[str, Any]:
        stats = per_example_stats(predictions, references, valid, inputs)
        sums = {name: np.array([column.sum()], dtype=float) for name, column in stats.items()}
        result = {name: _scalar(values) for name, values in self.summarize(sums).items()}
        if return_stats:
            result["stats"] = stats
        return result

    def summarize(self, sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Metrics from column sums; each value is an array over resamples."""
        tp, fp, fn = sums["tp"], sums["fp"], sums["fn"]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = {
                "json_validity": sums["valid"] / sums["n"],
                "format_validity": sums["valid"] / sums["n"],
                "field_precision": tp / (tp + fp),
                "field_recall": tp / (tp + fn),
                "field_f1": 2 * tp / (2 * tp + fp + fn),
                "exact_match": sums["exact"] / sums["n"],
            }
            if "values" in sums:
                out["hallucination_rate"] = sums["unsupported"] / sums["values"]
        return out


def per_example_stats(
    predictions: list[str],
    references: list[str],
    valid: list[bool] | None = None,
    inputs: list[str] | None = None,
) -> dict[str, np.ndarray]:
    rows = []
    for i, (raw_pred, raw_ref) in enumerate(zip(predictions, references, strict=True)):
        pred, ref = _object(raw_pred), _object(raw_ref)
        if ref is None:
            raise ValueError(f"reference {i} is not a JSON object: {raw_ref!r}")
        pred_fields, ref_fields = Counter(fields(pred or {})), Counter(fields(ref))
        tp = sum((pred_fields & ref_fields).values())
        row = {
            "n": 1.0,
            "valid": float(pred is not None if valid is None else bool(valid[i]) and pred is not None),
            "tp": tp,
            "fp": sum(pred_fields.values()) - tp,
            "fn": sum(ref_fields.values()) - tp,
            "exact": float(pred is not None and pred_fields == ref_fields),
        }
        if inputs is not None:
            values = leaf_values(pred or {})
            haystack = _squash(inputs[i])
            row["values"] = len(values)
            row["unsupported"] = sum(_squash(v) not in haystack for v in values)
        rows.append(row)
    names = ["n", "valid", "tp", "fp", "fn", "exact"] + (
        ["values", "unsupported"] if inputs is not None else []
    )
    return {name: np.array([row[name] for row in rows], dtype=float) for name in names}


def fields(obj: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """(path, canonical value) for every non-null scalar and every list element of an object."""
    out = []
    for key, value in obj.items():
        path = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            out.extend(fields(value, path + "."))
        elif isinstance(value, list):
            out.extend((path + "[]", _canonical(element)) for element in value if element is not None)
        else:
            out.append((path, _canonical(value)))
    return out


def leaf_values(value: Any) -> list[str]:
    """Every string and number inside a JSON value, as text (booleans and nulls are not claims)."""
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in leaf_values(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in leaf_values(item)]
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, float) and value.is_integer():
        return [str(int(value))]
    text = str(value).strip()
    return [text] if text else []


def _object(raw: str | None) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _normal(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value.strip() if isinstance(value, str) else value


def _canonical(value: Any) -> str:
    return json.dumps(_normal(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _squash(text: str) -> str:
    return SPACES.sub(" ", text).strip().lower()


def _scalar(values: np.ndarray) -> float | None:
    value = float(values[0])
    return None if np.isnan(value) else value
