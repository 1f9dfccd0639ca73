"""Active learning: where the teacher's budget teaches the student most.

Every call `flywheel serve` answered (ingested from the spool) gets a priority from what serving
learned about it, in this order:
- negative_feedback: a person rated the answer down (`POST /v1/feedback`);
- disagreed: the call was shadowed and the teacher's answer differs from the student's;
- fallback: the student was unsure or invalid (low_confidence, invalid_format, student_error) and the
  teacher answered instead: its answer is a new label (provenance `fallback`);
- unsure: the student answered, but within `unsure_margin` of its confidence threshold (or marked
  unsure when no teacher could take over);
- rare_slice: the call's slice is one curation flagged rare in the latest snapshot.
A call's score is the sum of its reasons' weights, so the order above holds between single reasons
and a call with several ranks above one with one of them.

`expected_gain` says what a budget of N calls buys: the student errors it is expected to cover, from
what is known per call (a fallback carries the student's rejected answer, a shadow the teacher's) and,
where nothing is known, the error rate observed in the call's group. A uniform pick of N calls covers
N/served of the errors in expectation; the ratio is the gain of choosing by priority.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from flywheel.answers import AnswerSpec, read_message
from flywheel.config import WorkloadConfig
from flywheel.quality.checks import is_negative_feedback
from flywheel.store.db import Warehouse

REASONS = ("negative_feedback", "disagreed", "fallback", "unsure", "rare_slice")
WEIGHTS = {"negative_feedback": 16.0, "disagreed": 8.0, "fallback": 4.0, "unsure": 2.0, "rare_slice": 1.0}
STUDENT_REASONS = frozenset({"low_confidence", "invalid_format", "student_error"})
SERVED_SQL = """
SELECT i.id, i.metadata, i.feedback, i.request, i.response, s.slice
FROM interactions i
LEFT JOIN (
    SELECT interaction_id, any_value(slice) AS slice FROM snapshot_examples
    WHERE snapshot_id = ? GROUP BY interaction_id
) s ON s.interaction_id = i.id
WHERE i.workload_id = ? AND i.source = 'spool'
ORDER BY i.id
"""
RARE_SQL = """
SELECT DISTINCT slice FROM slice_stats
WHERE workload_id = ? AND snapshot_id = ? AND rare AND slice_kind <> 'client'
"""


@dataclass(frozen=True, slots=True)
class ServedPriority:
    """One served call: why the teacher should look at it, and whether the student was wrong on it
    (True/False when serving learned it, None when unknown)."""

    interaction_id: str
    reasons: tuple[str, ...]
    score: float
    slice: str | None = None
    student_wrong: bool | None = None

    @property
    def top_reason(self) -> str | None:
        return self.reasons[0] if self.reasons else None


def served_priorities(
    warehouse: Warehouse,
    workload: WorkloadConfig,
    *,
    threshold: float = 0.0,
    unsure_margin: float = 0.1,
) -> list[ServedPriority]:
    """Every served call of the workload, highest priority first (ties: interaction id)."""
    from flywheel.datasets import latest_snapshot_id

    snapshot_id = latest_snapshot_id(warehouse, workload.id)

    def read(con: Any) -> tuple[list[tuple[Any, ...]], set[str]]:
        rows = con.execute(SERVED_SQL, [snapshot_id, workload.id]).fetchall()
        rare = {r[0] for r in con.execute(RARE_SQL, [workload.id, snapshot_id]).fetchall()}
        return rows, rare

    rows, rare = warehouse.read(read)
    spec = AnswerSpec.of(workload)
    out = [_priority(spec, row, rare, threshold + unsure_margin) for row in rows]
    return sorted(out, key=lambda p: (-p.score, p.interaction_id))


def _priority(spec: AnswerSpec, row: tuple[Any, ...], rare: set[str], unsure_below: float) -> ServedPriority:
    interaction_id, metadata, feedback, request, response, slice_name = row
    meta = _json(metadata) or {}
    reasons = []
    if is_negative_feedback(_json(feedback)):
        reasons.append("negative_feedback")
    if meta.get("shadow") == "disagree":
        reasons.append("disagreed")
    student_fell_back = meta.get("served_by") == "teacher" and meta.get("fallback_reason") in STUDENT_REASONS
    if student_fell_back:
        reasons.append("fallback")
    confidence = meta.get("student_confidence", meta.get("confidence"))
    served_unsure = isinstance(confidence, int | float) and confidence < unsure_below
    if meta.get("served_by") == "student" and (meta.get("fallback_wanted") or served_unsure):
        reasons.append("unsure")
    if slice_name is not None and slice_name in rare:
        reasons.append("rare_slice")
    wrong = _student_wrong(spec, meta, _json(request), _json(response), student_fell_back)
    score = sum(WEIGHTS[r] for r in reasons)
    return ServedPriority(interaction_id, tuple(reasons), score, slice_name, wrong)


def _student_wrong(
    spec: AnswerSpec, meta: dict[str, Any], request: Any, response: Any, fell_back: bool
) -> bool | None:
    """Known for a shadowed call (agree/disagree) and for a fallback that kept the student's answer."""
    if meta.get("shadow") in ("agree", "disagree"):
        return meta["shadow"] == "disagree"
    student = meta.get("student_message")
    if not fell_back:
        return None
    if not isinstance(student, dict):
        return True  # the student had no answer at all (student_error)
    teacher = response.get("message") if isinstance(response, dict) else None
    mine = read_message(spec, student, request if isinstance(request, dict) else None)
    theirs = read_message(spec, teacher, request if isinstance(request, dict) else None)
    return not (mine.valid and mine.value == theirs.value)


def _json(value: Any) -> Any:
    if isinstance(value, str | bytes):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def expected_gain(priorities: Sequence[ServedPriority], budget: int | None = None) -> dict[str, Any]:
    """Counts per reason and the share of the student's (estimated) errors the top `budget` flagged
    calls cover, against a uniform pick of as many calls (the module docstring)."""
    served = len(priorities)
    flagged = [p for p in priorities if p.reasons]
    chosen = flagged if budget is None else flagged[: max(budget, 0)]
    errors = estimated_errors(priorities)
    total = sum(errors.values())
    covered = sum(errors[p.interaction_id] for p in chosen)
    share = covered / total if total > 0 else None
    uniform = len(chosen) / served if served else None
    return {
        "served": served,
        "flagged": len(flagged),
        "by_reason": {r: sum(r in p.reasons for p in priorities) for r in REASONS},
        "by_top_reason": {r: sum(p.top_reason == r for p in priorities) for r in REASONS},
        "selected": len(chosen),
        "estimated_errors": round(total, 3),
        "estimated_errors_covered": round(covered, 3),
        "share_of_errors_covered": None if share is None else round(share, 4),
        "uniform_share": None if uniform is None else round(uniform, 4),
        "gain_vs_uniform": round(share / uniform, 2) if share is not None and uniform else None,
    }


def estimated_errors(priorities: Iterable[ServedPriority]) -> dict[str, float]:
    """Per call: 1/0 where the student's error is known, else the known error rate of calls with the
    same top reason (unflagged calls: of unflagged calls), else of all calls where it is known."""
    items = list(priorities)
    known: dict[str | None, list[bool]] = defaultdict(list)
    for p in items:
        if p.student_wrong is not None:
            known[p.top_reason].append(p.student_wrong)
    everything = [w for group in known.values() for w in group]
    overall = sum(everything) / len(everything) if everything else 0.0
    rates = {group: sum(values) / len(values) for group, values in known.items()}
    return {
        p.interaction_id: float(p.student_wrong)
        if p.student_wrong is not None
        else rates.get(p.top_reason, overall)
        for p in items
    }


def priority_order(priorities: Sequence[ServedPriority]) -> dict[str, float]:
    """interaction_id -> score, for ordering a label run's examples (unlisted examples score 0)."""
    return {p.interaction_id: p.score for p in priorities if p.score > 0}


def slice_weights(priorities: Sequence[ServedPriority]) -> dict[str, float]:
    """Slice -> summed score of its flagged served calls: where synthesis should add examples first."""
    weights: dict[str, float] = defaultdict(float)
    for p in priorities:
        if p.slice is not None and p.score > 0:
            weights[p.slice] += p.score
    return dict(weights)


def prioritize(examples: Sequence[Any], priorities: Sequence[ServedPriority]) -> list[Any]:
    """Examples (anything with `interaction_id` and `slice`), the served calls' priority first, then
    rare-slice ones, then the rest in their order: a budget that runs out has spent on the first."""
    order = priority_order(priorities)
    rare = {p.slice for p in priorities if "rare_slice" in p.reasons}
    return sorted(
        examples,
        key=lambda e: (-order.get(e.interaction_id or "", 0.0), e.slice not in rare),
    )


def rare_slices(warehouse: Warehouse, workload_id: str, snapshot_id: str) -> list[str]:
    """Slices curation flagged rare in this snapshot (client slices are not example slices)."""
    rows = warehouse.read(lambda con: con.execute(RARE_SQL, [workload_id, snapshot_id]).fetchall())
    return sorted(row[0] for row in rows)


def synthesis_slices(rare: Sequence[str], priorities: Sequence[ServedPriority]) -> list[str]:
    """Slices to synthesize for: those where served calls went wrong (heaviest first), then the rare."""
    weights = slice_weights(priorities)
    hard = sorted(weights, key=lambda s: (-weights[s], s))
    return [*hard, *(s for s in rare if s not in weights)]


def active_report(
    warehouse: Warehouse, workload: WorkloadConfig, threshold: float = 0.0
) -> tuple[list[ServedPriority], dict[str, Any]]:
    """(priorities, expected_gain) of the workload's served calls; empty when it served none."""
    priorities = served_priorities(warehouse, workload, threshold=threshold)
    return priorities, expected_gain(priorities)
