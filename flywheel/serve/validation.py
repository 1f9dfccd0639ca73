"""Is a student's answer usable for this request? Per task type, with the same rules curation uses.

classification: the label (read by the workload's label_parser) is in the label set;
extraction: the answer is JSON that satisfies the workload's schema (else the request's json_schema);
tool_call: every call names a tool the request offered and its arguments fit that tool's schema;
chat: the answer is not empty. An invalid answer gives a reason string (label_not_in_set,
invalid_json, schema_violation, unknown_tool, tools_not_offered, ...); a valid one gives None.
"""

from __future__ import annotations

from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.quality.answers import parse_answer
from flywheel.records import message_text


def invalid_reason(workload: WorkloadConfig, message: dict[str, Any], request: dict[str, Any]) -> str | None:
    """None when `message` is a valid answer to `request` for the workload's task; else why not."""
    if message.get("tool_calls") and not request.get("tools"):
        return "tools_not_offered"
    if not message.get("tool_calls") and not message_text(message).strip():
        return "empty_answer"
    try:
        parsed = parse_answer(workload, message, request)
    except Exception as exc:  # a malformed request schema must not turn into a 500
        return f"unvalidatable:{type(exc).__name__}"
    return parsed.reason
