"""Infer a workload's config from its real logs: format, task type, label set, label parser, template.

Used by `flywheel init --from LOGS` (a config written from traffic, not from a template) and by
curation when a classification workload lists no `labels` (the set is proposed from the answers,
with counts). Labels are always read through the answer contract (`flywheel.answers`): inference
only proposes the `ParserSpec` that the contract then applies.

Wrapping styles recognised in the logged answers (the most common one wins when it covers at least
MIN_SHARE of them, else answers are read bare):
  json      {"label": "billing"}            -> json_path $.label (or the object's one string key)
  brackets  [[[[downgrade]]]], (positive)   -> regex on the bracket characters
  quotes    "billing", 'billing', `billing`  -> regex inside the quotes
  prefix    Label: billing, Category - X      -> regex after the prefix word(s)
  bare      billing
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.answers import AnswerSpec, ParserSpec, read_message, strip_fences
from flywheel.records import Interaction, message_text

MIN_SHARE = 0.5  # a wrapping style is adopted when at least this share of answers use it
MAX_LABELS = 50  # more distinct answers than this is not a label set
MAX_LABEL_WORDS = 5
MAX_DISTINCT_SHARE = 0.2  # distinct answers / answers at or below this looks like a label set
MIN_ANSWERS = 10
TOOL_SHARE = 0.2  # this share of requests with tools (or answers with tool calls) -> tool_call
SCHEMA_SHARE = 0.5  # this share of requests with response_format json_schema -> extraction
JSON_LABEL_KEYS = ("label", "category", "class", "intent", "sentiment", "answer", "rating")
BRACKETS = {"[": "]", "(": ")", "{": "}", "<": ">"}
_BRACKETED = re.compile(r"\s*([\[\(\{<]+)\s*([^\[\]\(\)\{\}<>\n]{1,80}?)\s*([\]\)\}>]+)\s*\.?\s*")
_QUOTED = re.compile(r"\s*([\"'`])([^\"'`\n]{1,80})\1\s*\.?\s*")
_PREFIXED = re.compile(r"\s*([A-Za-z][A-Za-z ]{0,24}?)\s*[:=-]\s*(\S[^\n]{0,80}?)\s*\.?\s*")


@dataclass(slots=True)
class LabelInference:
    """The proposed label set (label -> count, most common first), rare answers, and the parser."""

    labels: dict[str, int]
    outliers: dict[str, int] = field(default_factory=dict)
    unreadable: int = 0
    parser: ParserSpec | None = None
    wrapping: str = "bare"
    wrapping_share: float = 0.0
    n_answers: int = 0

    def as_dict(self) -> dict[str, Any]:
        parser = None
        if self.parser is not None:
            parser = {k: v for k, v in vars_of(self.parser).items() if v not in (None, False)}
        return {
            "labels": self.labels,
            "outliers": self.outliers,
            "unreadable": self.unreadable,
            "wrapping": self.wrapping,
            "wrapping_share": round(self.wrapping_share, 4),
            "label_parser": parser,
            "n_answers": self.n_answers,
        }


def vars_of(parser: ParserSpec) -> dict[str, Any]:
    return {"regex": parser.regex, "json_path": parser.json_path, "lowercase": parser.lowercase}


def detect_wrapping(text: str) -> tuple[str, ParserSpec | None]:
    """The wrapping style of one answer and the parser that reads it (None for a bare answer)."""
    body = strip_fences(text).strip()
    if body.startswith("{"):
        key = _json_label_key(body)
        return ("json", ParserSpec(json_path=f"$.{key}")) if key else ("other", None)
    match = _BRACKETED.fullmatch(body)
    if match and _balanced(match.group(1), match.group(3)):
        opener, closer = re.escape(match.group(1)[0]), re.escape(BRACKETS[match.group(1)[0]])
        return f"brackets:{match.group(1)}", ParserSpec(
            regex=rf"{opener}+\s*([^{opener}{closer}]+?)\s*{closer}+"
        )
    match = _QUOTED.fullmatch(body)
    if match:
        return "quotes", ParserSpec(regex=r"[\"'`]([^\"'`]+)[\"'`]")
    match = _PREFIXED.fullmatch(body)
    if match:
        prefix = re.escape(match.group(1).strip())
        return f"prefix:{match.group(1).strip().casefold()}", ParserSpec(
            regex=rf"(?i){prefix}\s*[:=-]\s*(.+?)\s*\.?\s*$"
        )
    return "bare", None


def _balanced(opening: str, closing: str) -> bool:
    return len(opening) == len(closing) and all(
        BRACKETS[o] == c for o, c in zip(opening, closing[::-1], strict=True)
    )


def _json_label_key(body: str) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    strings = [key for key, item in value.items() if isinstance(item, str)]
    for key in JSON_LABEL_KEYS:
        if key in strings:
            return key
    return strings[0] if len(value) == 1 and strings else None


def infer_labels(answers: Iterable[str], parser: ParserSpec | None = None) -> LabelInference:
    """Propose a label set from logged answer texts; detect the wrapping unless `parser` is given."""
    texts = [text for text in answers if text and text.strip()]
    wrapping, share = "configured", 1.0
    if parser is None:
        wrapping, parser, share = _common_wrapping(texts)
    spec = AnswerSpec("classification", None, parser)
    values: Counter[str] = Counter()
    spellings: dict[str, Counter[str]] = {}
    unreadable = 0
    for text in texts:
        value = read_message(spec, {"role": "assistant", "content": text}, None).value
        if value is None:
            unreadable += 1
            continue
        folded = value.casefold()
        values[folded] += 1
        spellings.setdefault(folded, Counter())[value] += 1
    floor = max(2, math.ceil(0.002 * len(texts)))
    labels, outliers = {}, {}
    for folded, count in values.most_common():
        spelling = spellings[folded].most_common(1)[0][0]
        (labels if count >= floor else outliers)[spelling] = count
    return LabelInference(labels, outliers, unreadable, parser, wrapping, share, len(texts))


def _common_wrapping(texts: list[str]) -> tuple[str, ParserSpec | None, float]:
    styles: Counter[str] = Counter()
    parsers: dict[str, ParserSpec | None] = {}
    for text in texts:
        style, parser = detect_wrapping(text)
        styles[style] += 1
        parsers.setdefault(style, parser)
    if not styles:
        return "bare", None, 0.0
    style, count = styles.most_common(1)[0]
    share = count / len(texts)
    if style in ("bare", "other") or share < MIN_SHARE:
        return "bare", None, styles["bare"] / len(texts)
    return style.split(":", 1)[0], parsers[style], share


def looks_like_classification(inference: LabelInference) -> bool:
    """Few distinct, short answers that recur: a label set."""
    if inference.n_answers < MIN_ANSWERS or not inference.labels:
        return False
    distinct = len(inference.labels) + len(inference.outliers)
    covered = sum(inference.labels.values()) / inference.n_answers
    short = all(len(label.split()) <= MAX_LABEL_WORDS for label in inference.labels)
    few = len(inference.labels) <= MAX_LABELS and distinct <= MAX_DISTINCT_SHARE * inference.n_answers
    return short and few and covered >= 0.9


@dataclass(slots=True)
class TaskGuess:
    task: str
    reason: str
    labels: LabelInference | None = None


def guess_task(interactions: list[Interaction]) -> TaskGuess:
    """tools/tool_calls -> tool_call; response_format json_schema -> extraction; few distinct short
    answers -> classification; else chat. The reason names the evidence."""
    ok = [i for i in interactions if i.status == "ok"]
    n = len(ok) or 1
    with_tools = sum(1 for i in ok if i.request.get("tools") or _message(i).get("tool_calls"))
    if with_tools / n >= TOOL_SHARE:
        return TaskGuess(
            "tool_call", f"{with_tools} of {len(ok)} requests offer tools or answer with tool calls"
        )
    with_schema = sum(1 for i in ok if _schema_format(i.request))
    if with_schema / n >= SCHEMA_SHARE:
        return TaskGuess(
            "extraction", f"{with_schema} of {len(ok)} requests ask for response_format json_schema"
        )
    inference = infer_labels(message_text(_message(i)) for i in ok)
    if looks_like_classification(inference):
        reason = (
            f"{len(inference.labels)} distinct short answers cover "
            f"{sum(inference.labels.values())} of {inference.n_answers} answers ({inference.wrapping})"
        )
        return TaskGuess("classification", reason, inference)
    return TaskGuess(
        "chat", f"answers are free text ({len(inference.labels) + len(inference.outliers)} distinct)"
    )


def _message(interaction: Interaction) -> dict[str, Any]:
    message = interaction.response.get("message")
    return message if isinstance(message, dict) else {}


def _schema_format(request: dict[str, Any]) -> bool:
    response_format = request.get("response_format")
    return isinstance(response_format, dict) and response_format.get("type") == "json_schema"


def read_sample(path: Path, fmt: str, workload_id: str, limit: int) -> Iterator[Interaction]:
    """Up to `limit` interactions of one log file (quarantine-bound units are skipped)."""
    from connectors import REGISTRY, ReadContext

    count = 0
    for item in REGISTRY[fmt].read(path, ReadContext(workload_id=workload_id)):
        if isinstance(item, Interaction):
            yield item
            count += 1
            if count >= limit:
                return
