"""Evaluation's view of the answer contract (flywheel.answers): what the metrics compare.

Predictions and references are read by the same contract serving and curation use, against the
example's own request (its tools and response_format). A reference is the gold label, else the
teacher's label or logged answer.
"""

from __future__ import annotations

from typing import Any

from flywheel.answers import (
    NO_CALL,
    Answer,
    AnswerSpec,
    calls_from_label,
    parse_label,
    read_label,
    read_message,
)
from flywheel.config import WorkloadConfig
from flywheel.records import Example, message_text

__all__ = [
    "NO_CALL",
    "Answer",
    "answer_from_label",
    "answer_from_message",
    "calls_from_label",
    "input_text",
    "parse_label",
    "reference_answer",
    "request_of",
]


def request_of(example: Example | None) -> dict[str, Any]:
    """The request an example answers: the logged one when it carries it, else its tools/format."""
    if example is None:
        return {}
    if example.request is not None:
        return example.request
    return {"tools": example.tools, "response_format": example.response_format}


def answer_from_message(
    message: dict[str, Any] | None, workload: WorkloadConfig, example: Example | None = None
) -> Answer:
    return read_message(AnswerSpec.of(workload), message, request_of(example))


def answer_from_label(label: str, workload: WorkloadConfig, example: Example | None = None) -> Answer:
    return read_label(AnswerSpec.of(workload), label, request_of(example))


def reference_answer(example: Example, workload: WorkloadConfig, reference: str) -> Answer:
    """The answer a prediction is scored against: the gold label, or the teacher's target."""
    if reference == "gold":
        if example.gold is None:
            raise ValueError(f"example {example.example_id}: reference 'gold' but the example has no gold")
        return answer_from_label(example.gold, workload, example)
    if example.label is not None:
        return answer_from_label(example.label, workload, example)
    return answer_from_message(example.target, workload, example)


def input_text(example: Example) -> str:
    """What the user wrote: the non-system messages, which extracted values must come from."""
    return "\n".join(message_text(m) for m in example.messages if m.get("role") != "system")
