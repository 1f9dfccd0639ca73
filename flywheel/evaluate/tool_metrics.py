"""Per-tool metrics of a tool_call workload: which tools and which parameters a student gets right.

Computed from what the runner scored (each model's canonical answers, "" where the answer was invalid,
against the same references), so an empty or invalid answer never matches anything:
- decision_accuracy (all turns): the model called a tool exactly when the reference did (text vs tool).
- name_accuracy (turns whose reference calls tools): the called function names equal the reference's.
- coverage: the share of turns the student answers in its calibrated cascade (flywheel/evaluate/
  cascade.py), overall and per tool (the share of that tool's turns); absent for the teacher.
Per tool (the reference's calls of it; a call is matched to the model's call of the same name in the
same turn, else to nothing):
- name_accuracy: the call was matched; arguments_exact: matched with equal arguments.
Per (tool, parameter):
- exact: among the tool's calls where the parameter is in the reference or the matched call, the
  values are equal (a missing value is not equal to a present one).
- f1: 2tp / (2tp + fp + fn) with tp = present in both and equal, fp = present in the model's call but
  absent from or different in the reference, fn = present in the reference but absent from or
  different in the model's call.
Rows are (tool, parameter, metric, value, n): tool None for overall metrics, parameter None for
per-tool ones; n is the number of cases behind the value.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from flywheel.evaluate.cascade import claim_mask
from flywheel.evaluate.runner import EvaluationResult

MISSING = object()


@dataclass(frozen=True, slots=True)
class ToolMetric:
    tool: str | None
    parameter: str | None
    metric: str
    value: float | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _calls(raw: str) -> list[tuple[str, dict[str, Any]]] | None:
    """(name, arguments) of a canonical answer; [] for a text answer; None when invalid ("")."""
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    out = []
    for call in value:
        if not isinstance(call, dict):
            return None
        arguments = call.get("arguments")
        out.append((str(call.get("name") or ""), arguments if isinstance(arguments, dict) else {}))
    return out


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _match(ref: list[tuple[str, dict]], pred: list[tuple[str, dict]]) -> list[dict[str, Any] | None]:
    """For each reference call, the model's call of the same name in the turn (each used once)."""
    unused = list(pred)
    matched: list[dict[str, Any] | None] = []
    for name, arguments in ref:
        same = [i for i, (n, _) in enumerate(unused) if n == name]
        exact = [i for i in same if _canon(unused[i][1]) == _canon(arguments)]
        pick = (exact or same or [None])[0]
        matched.append(None if pick is None else unused.pop(pick)[1])
    return matched


class _Tally:
    """Running counts per tool and per (tool, parameter)."""

    def __init__(self) -> None:
        self.tool: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # n, named, exact, turns, kept
        self.param: dict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0, 0, 0, 0, 0]
        )  # n, eq, tp, fp, fn

    def call(self, name: str, ref_args: dict[str, Any], pred_args: dict[str, Any] | None) -> None:
        counts = self.tool[name]
        counts[0] += 1
        counts[1] += pred_args is not None
        counts[2] += pred_args is not None and _canon(pred_args) == _canon(ref_args)
        given = pred_args or {}
        for key in set(ref_args) | set(given):
            ref, pred = ref_args.get(key, MISSING), given.get(key, MISSING)
            equal = ref is not MISSING and pred is not MISSING and _canon(ref) == _canon(pred)
            row = self.param[(name, key)]
            row[0] += 1
            row[1] += equal
            row[2] += equal
            row[3] += pred is not MISSING and not equal
            row[4] += ref is not MISSING and not equal


def tool_metrics(
    references: list[str], answers: list[str], claimed: np.ndarray | None = None
) -> list[ToolMetric]:
    """Every per-tool metric of one model's `answers` against `references` (module docstring)."""
    if len(references) != len(answers):
        raise ValueError(f"{len(answers)} answers for {len(references)} references")
    tally, decision_ok, name_ok, tool_turns = _Tally(), 0, 0, 0
    for i, (raw_ref, raw_pred) in enumerate(zip(references, answers, strict=True)):
        ref, pred = _calls(raw_ref), _calls(raw_pred)
        if ref is None:
            raise ValueError(f"reference {i} is not a list of calls: {raw_ref!r}")
        decision_ok += pred is not None and bool(pred) == bool(ref)
        if ref:
            tool_turns += 1
            name_ok += pred is not None and sorted(n for n, _ in pred) == sorted(n for n, _ in ref)
        for (name, arguments), matched in zip(ref, _match(ref, pred or []), strict=True):
            tally.call(name, arguments, matched)
        if claimed is not None:
            for name in {n for n, _ in ref}:
                tally.tool[name][3] += 1
                tally.tool[name][4] += bool(claimed[i])
    rows = [
        ToolMetric(None, None, "decision_accuracy", _ratio(decision_ok, len(references)), len(references)),
        ToolMetric(None, None, "name_accuracy", _ratio(name_ok, tool_turns), tool_turns),
    ]
    if claimed is not None:
        rows.append(
            ToolMetric(None, None, "coverage", _ratio(int(claimed.sum()), len(claimed)), len(claimed))
        )
    return rows + _tool_rows(tally, claimed is not None)


def _tool_rows(tally: _Tally, with_coverage: bool) -> list[ToolMetric]:
    rows = []
    for name in sorted(tally.tool):
        n, named, exact, turns, kept = tally.tool[name]
        rows += [
            ToolMetric(name, None, "name_accuracy", _ratio(named, n), n),
            ToolMetric(name, None, "arguments_exact", _ratio(exact, n), n),
        ]
        if with_coverage:
            rows.append(ToolMetric(name, None, "coverage", _ratio(kept, turns), turns))
    for name, key in sorted(tally.param):
        n, equal, tp, fp, fn = tally.param[(name, key)]
        rows += [
            ToolMetric(name, key, "exact", _ratio(equal, n), n),
            ToolMetric(name, key, "f1", _ratio(2 * tp, 2 * tp + fp + fn), n),
        ]
    return rows


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def nested(rows: list[ToolMetric]) -> dict[str, Any]:
    """The rows as one JSON object: {"overall": {metric: value}, "tools": {tool: {metric, "n",
    "parameters": {parameter: {"exact", "f1", "n"}}}}}."""
    out: dict[str, Any] = {"overall": {}, "tools": {}}
    for row in rows:
        if row.tool is None:
            out["overall"][row.metric] = row.value
            continue
        tool = out["tools"].setdefault(row.tool, {"parameters": {}})
        if row.parameter is None:
            tool[row.metric] = row.value
            tool["n"] = row.n if row.metric != "coverage" else tool.get("n", row.n)
        else:
            tool["parameters"].setdefault(row.parameter, {})[row.metric] = row.value
            tool["parameters"][row.parameter]["n"] = row.n
    return out


def evaluation_tool_metrics(
    result: EvaluationResult,
    cascades: list[dict[str, Any]],
    serving: dict[str, tuple[float, str]] | None = None,
) -> dict[str, list[ToolMetric]]:
    """Per-tool rows of every model of a tool_call evaluation; coverage at each candidate's chosen
    cascade threshold (`cascades`: GateDecision.cascades) or a champion's served one (`serving`)."""
    if result.task != "tool_call":
        return {}
    thresholds: dict[str, tuple[float | None, str]] = {
        c["model"]: (c["threshold"], c["claims"]) for c in cascades
    }
    thresholds |= serving or {}
    out = {}
    for model, scored in result.models.items():
        found = thresholds.get(model)
        claimed = None
        if found is not None:  # no threshold meets the target: the student claims nothing
            threshold, claims = found
            claimed = (
                claim_mask(scored, threshold, claims) if threshold is not None else np.zeros(scored.n, bool)
            )
        out[model] = tool_metrics(result.references, scored.answers, claimed)
    return out
