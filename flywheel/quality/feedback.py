"""Feedback from the logs: the outcome signal a workload's `curation.feedback` points at.

Logs keep outcomes in many places: a thumbs up/down in `feedback`, an agent episode's reward in
`metadata.reward`, a grader's score in `feedback.score`. `read_outcome` reads the configured field of
one interaction and judges it against the rule (a threshold, a list of negative values, or the
built-in reading of logged feedback); curation then excludes or downweights the negative ones
(flywheel/quality/checks.py and rows.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from flywheel.config.curation import FeedbackConfig
from flywheel.quality.checks import is_negative_feedback

NEGATIVE_FEEDBACK = "negative_feedback"


@dataclass(frozen=True, slots=True)
class Outcome:
    """The value the field held for one interaction, and whether the rule reads it as negative."""

    value: Any
    negative: bool
    detail: str = ""


def read_outcome(parts: dict[str, Any], rule: FeedbackConfig) -> Outcome | None:
    """The outcome of one interaction (`parts`: feedback, metadata, request, response), or None
    when the field is absent or null there."""
    value = field_value(parts, rule.field)
    if value is None:
        return None
    negative, why = judge(value, rule)
    return Outcome(value, negative, f"{rule.field}={_show(value)} {why}" if negative else "")


def field_value(parts: dict[str, Any], path: str) -> Any:
    """The value at a dotted path (list items by index), or None when any step is missing."""
    root, *keys = path.split(".")
    node = parts.get(root)
    for key in keys:
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return node


def judge(value: Any, rule: FeedbackConfig) -> tuple[bool, str]:
    """(negative, why) under the rule: listed values, then the threshold, else the built-in reading."""
    if any(_same(value, negative) for negative in rule.negative_values):
        return True, "is a negative value"
    if rule.negative_below is not None:
        number = _number(value)
        if number is not None and number < rule.negative_below:
            return True, f"< {rule.negative_below:g}"
        return False, ""
    if not rule.negative_values and is_negative_feedback(value):
        return True, "reads as negative feedback"
    return False, ""


def _same(value: Any, negative: str | bool | int | float) -> bool:
    if isinstance(negative, bool) or isinstance(value, bool):
        return value is negative
    if isinstance(negative, str):
        return isinstance(value, str) and value.strip().casefold() == negative.strip().casefold()
    return isinstance(value, int | float) and value == negative


def _number(value: Any) -> float | None:
    """A number, or numeric text; booleans and NaN are no number."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value) if isinstance(value, int | float | str) else None
    except (ValueError, OverflowError):
        return None
    return None if number is None or math.isnan(number) else number


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
