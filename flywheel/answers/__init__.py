"""The answer contract: parse, normalize, validate and render answers for every task type.

One module below curation, teacher labelling, evaluation and serving, so that all of them read an
answer the same way: `read_message` (an assistant message), `read_label` (a stored label), and
`AnswerFormat.render` (a canonical answer back in the teacher's own format).
"""

from flywheel.answers.parse import (
    NO_CALL,
    Answer,
    calls_from_label,
    parse_label,
    read_label,
    read_message,
    strip_fences,
)
from flywheel.answers.render import AnswerFormat, learn_format
from flywheel.answers.spec import AnswerSpec, ParserSpec, schema_error, schema_for, tool_schemas

__all__ = [
    "NO_CALL",
    "Answer",
    "AnswerFormat",
    "AnswerSpec",
    "ParserSpec",
    "calls_from_label",
    "learn_format",
    "parse_label",
    "read_label",
    "read_message",
    "schema_error",
    "schema_for",
    "strip_fences",
    "tool_schemas",
]
