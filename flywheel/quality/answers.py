"""Curation's view of the answer contract (flywheel.answers): a logged answer's label, or why not.

Labels follow the contract: a class label, canonical JSON for extraction, canonical sorted tool-call
JSON ("[]" for a text reply), the text for chat. Format failures are reason strings that land with
the rejected row (unparseable_label, label_not_in_set, invalid_json, schema_violation, ...).
"""

from __future__ import annotations

from typing import Any

from flywheel.answers import Answer, AnswerSpec, read_message
from flywheel.answers import schema_for as _schema_for
from flywheel.answers import tool_schemas as _tool_schemas
from flywheel.config import WorkloadConfig

ParsedAnswer = Answer


def parse_answer(
    workload: WorkloadConfig,
    message: dict[str, Any],
    request: dict[str, Any],
    spec: AnswerSpec | None = None,
) -> Answer:
    """The label of `message` under the workload's task, or a format reason with a short detail.
    `spec`: the workload's AnswerSpec when the caller built it once for many rows."""
    return read_message(spec or AnswerSpec.of(workload), message, request)


def schema_for(workload: WorkloadConfig, request: dict[str, Any]) -> dict[str, Any] | None:
    return _schema_for(AnswerSpec.of(workload), request)


def tool_schemas(workload: WorkloadConfig, request: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    return _tool_schemas(AnswerSpec.of(workload), request)
