"""Write a canonical answer back the way the teacher wrote it, so the application can parse it.

Students answer in canonical form (a bare label, compact JSON, tool calls). Applications parse what
their LLM used to send: `[[[[analyst rating]]]]`, `Category: Billing`, fenced pretty JSON. An
`AnswerFormat` is learned from the logged answers a student trained on and renders a canonical answer
in that shape. It is only used when the workload's own parser reads every rendered label back to
itself (checked when learned), so rendering never turns a right answer into an unreadable one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from flywheel.answers.parse import FENCE_RE, read_classification, strip_fences
from flywheel.answers.spec import AnswerSpec
from flywheel.records import message_text

MIN_SHARE = 0.5  # a wrapping or JSON style is learned when at least this share of answers use it


@dataclass(frozen=True, slots=True)
class AnswerFormat:
    """classification: prefix + surface spelling of the label + suffix; extraction: fence/indent."""

    prefix: str = ""
    suffix: str = ""
    surface: dict[str, str] = field(default_factory=dict, hash=False)
    fence: str | None = None  # e.g. "json" for ```json ... ```
    indent: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> AnswerFormat:
        return cls(**(data or {}))

    def render(self, spec: AnswerSpec, message: dict[str, Any], value: str | None) -> dict[str, Any]:
        """The assistant message the teacher would have sent for this canonical answer."""
        if spec.task == "classification" and value is not None:
            return {
                "role": "assistant",
                "content": self.prefix + self.surface.get(value, value) + self.suffix,
            }
        if spec.task == "extraction" and value is not None:
            return {"role": "assistant", "content": self._json_text(_json_of(message, value))}
        if spec.task == "tool_call":
            return _tool_message(message)
        return {"role": "assistant", "content": message_text(message)}

    def _json_text(self, value: Any) -> str:
        text = json.dumps(value, ensure_ascii=False, indent=self.indent)
        return f"```{self.fence}\n{text}\n```" if self.fence is not None else text


def _json_of(message: dict[str, Any], value: str) -> Any:
    """The student's JSON in its own key order; the canonical value when its text is not plain JSON."""
    try:
        return json.loads(strip_fences(message_text(message)))
    except ValueError:
        return json.loads(value)


def _tool_message(message: dict[str, Any]) -> dict[str, Any]:
    calls = []
    for index, call in enumerate(message.get("tool_calls") or []):
        function = call.get("function") or {}
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments if arguments is not None else {}, ensure_ascii=False)
        calls.append(
            {
                "id": call.get("id") or f"call_{index}",
                "type": "function",
                "function": {"name": function.get("name"), "arguments": arguments},
            }
        )
    out: dict[str, Any] = {"role": "assistant", "content": message_text(message) or None}
    if calls:
        out["tool_calls"] = calls
    return out


def learn_format(spec: AnswerSpec, answers: Iterable[tuple[str, str | None]]) -> AnswerFormat:
    """The format of the logged answers: (raw answer text, its canonical label/JSON) pairs."""
    pairs = [(text, value) for text, value in answers if value]
    if spec.task == "classification":
        return _learn_wrapping(spec, pairs)
    if spec.task == "extraction":
        return _learn_json_style(pairs)
    return AnswerFormat()


def _learn_wrapping(spec: AnswerSpec, pairs: list[tuple[str, str]]) -> AnswerFormat:
    wrappings: Counter[tuple[str, str]] = Counter()
    spellings: dict[str, Counter[str]] = {}
    for text, label in pairs:
        start = text.casefold().find(label.casefold())
        if start < 0 or text.casefold().find(label.casefold(), start + 1) >= 0:
            continue  # absent or ambiguous: this answer says nothing about the wrapping
        end = start + len(label)
        wrappings[(text[:start], text[end:])] += 1
        spellings.setdefault(label, Counter())[text[start:end]] += 1
    surface = {label: counts.most_common(1)[0][0] for label, counts in spellings.items()}
    if not wrappings:
        return AnswerFormat(surface=surface)
    (prefix, suffix), count = wrappings.most_common(1)[0]
    wrapped = AnswerFormat(prefix, suffix, surface)
    if count / len(pairs) < MIN_SHARE or not _reads_back(spec, wrapped):
        bare = AnswerFormat(surface=surface)
        return bare if _reads_back(spec, bare) else AnswerFormat()
    return wrapped


def _reads_back(spec: AnswerSpec, fmt: AnswerFormat) -> bool:
    """Does the workload's parser read every rendered label back to the label itself?"""
    labels = spec.labels or tuple(fmt.surface)
    for label in labels:
        rendered = fmt.render(spec, {}, label)["content"]
        if read_classification(spec, rendered).value != label:
            return False
    return True


def _learn_json_style(pairs: list[tuple[str, str]]) -> AnswerFormat:
    fenced: Counter[str] = Counter()
    pretty = 0
    for text, _ in pairs:
        match = FENCE_RE.match(text)
        if match:
            fenced[text.strip()[3:].split("\n", 1)[0].strip()] += 1
            text = match.group(1)
        pretty += "\n" in text.strip()
    fence = None
    if fenced and sum(fenced.values()) / len(pairs) >= MIN_SHARE:
        fence = fenced.most_common(1)[0][0]
    indent = 2 if pairs and pretty / len(pairs) >= MIN_SHARE else None
    return AnswerFormat(fence=fence, indent=indent)
