"""Row checks: each looks at one logged interaction and returns None (keep) or (reason, detail).

`first_failure` runs them in order and stops at the first reason, so every interaction gets exactly
one verdict. The order puts the most specific, least debatable causes first: a failed call, an answer
the student served (it is no teacher label), then a cut or filtered answer, a refusal, an empty
answer, an answer in the wrong format, a user's thumbs-down, and finally length bounds.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flywheel.config.curation import CurationConfig
from flywheel.quality.answers import ParsedAnswer
from flywheel.records import message_text

if TYPE_CHECKING:
    from flywheel.quality.feedback import Outcome

Verdict = tuple[str, str] | None
NEGATIVE_WORDS = frozenset({"down", "thumbs_down", "thumbsdown", "negative", "bad", "dislike", "👎", "-1"})
FEEDBACK_KEYS = ("rating", "thumbs", "sentiment", "value", "score", "label", "vote")


@dataclass(slots=True)
class RowView:
    """What the checks need to know about one interaction."""

    status: str
    response: dict[str, Any]
    feedback: Any
    input_tokens: int
    parsed: ParsedAnswer | None
    outcome: Outcome | None = None  # what `curation.feedback` read, when it is configured
    has_gold: bool = False  # a person gave the right answer (gold_labels, e.g. a feedback correction)
    served_by: str | None = None  # "student" | "teacher" for calls `flywheel serve` answered

    @property
    def message(self) -> dict[str, Any]:
        message = self.response.get("message")
        return message if isinstance(message, dict) else {}

    @property
    def finish_reason(self) -> str | None:
        return self.response.get("finish_reason")


def check_error(row: RowView, config: CurationConfig) -> Verdict:
    if row.status != "ok" or "error" in row.response:
        error = row.response.get("error")
        kind = (error.get("code") or error.get("type")) if isinstance(error, dict) else None
        kind = kind or row.status
        return "error_response", f"the call failed: {kind}"
    return None


def check_finish_reason(row: RowView, config: CurationConfig) -> Verdict:
    if row.finish_reason == "length":
        return "truncated", "finish_reason=length: the answer was cut at max_tokens"
    if row.finish_reason == "content_filter":
        return "content_filtered", "finish_reason=content_filter"
    return None


def check_refusal(row: RowView, config: CurationConfig) -> Verdict:
    refusal = row.message.get("refusal")
    if isinstance(refusal, str) and refusal.strip():
        return "refusal", "message.refusal is set"
    head = message_text(row.message)[:400]
    for pattern in _compiled(tuple(config.refusal_patterns)):
        if pattern.search(head):
            return "refusal", f"answer matches refusal pattern {pattern.pattern[:40]!r}"
    return None


def check_empty(row: RowView, config: CurationConfig) -> Verdict:
    if not message_text(row.message).strip() and not row.message.get("tool_calls"):
        return "empty_answer", "no text and no tool calls"
    return None


def check_format(row: RowView, config: CurationConfig) -> Verdict:
    if row.parsed is not None and row.parsed.reason:
        return row.parsed.reason, row.parsed.detail
    return None


def check_feedback(row: RowView, config: CurationConfig) -> Verdict:
    if row.has_gold:  # a corrected answer is kept: its gold is the person's correction
        return None
    if config.feedback is not None:  # the configured field decides; "downweight" keeps the row
        if row.outcome is not None and row.outcome.negative and config.feedback.action == "exclude":
            return "negative_feedback", row.outcome.detail
        return None
    if config.reject_negative_feedback and is_negative_feedback(row.feedback):
        return "negative_feedback", "the user rated this answer down"
    return None


def check_lengths(row: RowView, config: CurationConfig) -> Verdict:
    if row.input_tokens < config.min_input_tokens:
        return "input_too_short", f"{row.input_tokens} input tokens < {config.min_input_tokens}"
    if row.input_tokens > config.max_input_tokens:
        return "input_too_long", f"{row.input_tokens} input tokens > {config.max_input_tokens}"
    output = output_tokens(row.message)
    if output > config.max_output_tokens:
        return "output_too_long", f"{output} output tokens > {config.max_output_tokens}"
    return None


def check_provenance(row: RowView, config: CurationConfig) -> Verdict:
    if row.served_by == "student" and not row.has_gold:
        return "student_answer", "served by the student, not the teacher: its answer is no label to learn"
    return None


ROW_CHECKS: tuple[Callable[[RowView, CurationConfig], Verdict], ...] = (
    check_error,
    check_provenance,
    check_finish_reason,
    check_refusal,
    check_empty,
    check_format,
    check_feedback,
    check_lengths,
)


def first_failure(row: RowView, config: CurationConfig) -> Verdict:
    """The first failing check's (reason, detail), or None when the row passes them all."""
    for check in ROW_CHECKS:
        verdict = check(row, config)
        if verdict is not None:
            return verdict
    return None


def is_negative_feedback(feedback: Any) -> bool:
    """Thumbs-down in the shapes logs use: {"rating": "down"}, {"score": -1}, False, "negative"..."""
    if feedback is None:
        return False
    if isinstance(feedback, bool):
        return not feedback
    if isinstance(feedback, int | float):
        return feedback < 0
    if isinstance(feedback, str):
        return feedback.strip().lower() in NEGATIVE_WORDS
    if isinstance(feedback, dict):
        return any(is_negative_feedback(feedback[key]) for key in FEEDBACK_KEYS if key in feedback)
    if isinstance(feedback, list):
        return any(is_negative_feedback(item) for item in feedback)
    return False


def output_tokens(message: dict[str, Any]) -> int:
    text = message_text(message)
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        text += str(function.get("name", "")) + str(function.get("arguments", ""))
    return (len(text) + 3) // 4


@functools.lru_cache(maxsize=16)
def _compiled(patterns: tuple[str, ...]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE | re.DOTALL) for p in patterns)
