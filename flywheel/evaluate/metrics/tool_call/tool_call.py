"""Tool-call metrics: function-name accuracy, arguments exact match, exact call, no-call precision.

Loaded with `evaluate.load(<this directory>)`. Predictions and references are JSON lists of calls
[{"name", "arguments"}] as strings ("[]" = the model answered in text; "" = nothing readable, which
is wrong and invalid; pass "" rather than None: a batch that starts with None fails the Arrow
schema). Arguments are compared after JSON normalisation (key order and whitespace do not matter).
`valid` (optional, one bool per example): known tool and parseable arguments; without it every
readable prediction is valid.

- tool_name_accuracy: the called function names equal the reference's ("no call" is a name too).
- arguments_exact: among reference calls whose name was predicted right, the arguments are equal.
- tool_call_exact: names and arguments equal (for a text reference: the prediction is text too).
- no_call_precision: among predictions that call nothing, the reference called nothing either.

Every metric is a function of sums of per-example statistics, so `summarize(sums)` recomputes them for
any resample: that is what the bootstrap uses.
"""

import json
from typing import Any

import datasets
import evaluate
import numpy as np


class ToolCall(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions/references: JSON lists of {name, arguments}; valid: optional",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(
        self,
        predictions: list[str],
        references: list[str],
        valid: list[bool] | None = None,
        return_stats: bool = False,
    ) -> dict[str, Any]:
        stats = per_example_stats(predictions, references, valid)
        sums = {name: np.array([column.sum()], dtype=float) for name, column in stats.items()}
        result = {name: _scalar(values) for name, values in self.summarize(sums).items()}
        if return_stats:
            result["stats"] = stats
        return result

    def summarize(self, sums: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Metrics from column sums; each value is an array over resamples."""
        n = sums["n"]
        with np.errstate(divide="ignore", invalid="ignore"):
            return {
                "tool_name_accuracy": sums["name_ok"] / n,
                "arguments_exact": sums["args_ok"] / sums["name_ok_call"],
                "tool_call_exact": sums["exact"] / n,
                "no_call_precision": sums["no_call_ok"] / sums["pred_no_call"],
                "format_validity": sums["valid"] / n,
            }


def per_example_stats(
    predictions: list[str], references: list[str], valid: list[bool] | None = None
) -> dict[str, np.ndarray]:
    columns = ["n", "valid", "name_ok", "exact", "name_ok_call", "args_ok", "pred_no_call", "no_call_ok"]
    rows = []
    for i, (raw_pred, raw_ref) in enumerate(zip(predictions, references, strict=True)):
        pred, ref = _calls(raw_pred), _calls(raw_ref)
        if ref is None:
            raise ValueError(f"reference {i} is not a JSON list of calls: {raw_ref!r}")
        readable = pred is not None
        pred = pred or []
        name_ok = sorted(c[0] for c in pred) == sorted(c[0] for c in ref)
        exact = readable and sorted(pred) == sorted(ref)
        ref_call, pred_call = bool(ref), bool(pred)
        rows.append(
            [
                1.0,
                float(readable if valid is None else bool(valid[i]) and readable),
                float(readable and name_ok),
                float(exact),
                float(readable and name_ok and ref_call),
                float(exact and ref_call),
                float(readable and not pred_call),
                float(readable and not pred_call and not ref_call),
            ]
        )
    table = np.array(rows, dtype=float).reshape(len(rows), len(columns))
    return {name: table[:, j] for j, name in enumerate(columns)}


def _calls(raw: str | None) -> list[tuple[str, str]] | None:
    """Sorted (name, canonical arguments) pairs, or None when the string is not a list of calls."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    calls = []
    for call in value:
        if not isinstance(call, dict):
            return None
        arguments = json.dumps(call.get("arguments"), sort_keys=True, separators=(",", ":"))
        calls.append((str(call.get("name") or ""), arguments))
    return sorted(calls)


def _scalar(values: np.ndarray) -> float | None:
    value = float(values[0])
    return None if np.isnan(value) else value
