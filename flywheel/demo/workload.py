"""The contract every demo workload implements; `traffic` drives it and plants the faults."""

from __future__ import annotations

import random
from typing import Any

from flywheel.demo.common import Example, assistant_message


class DemoWorkload:
    """One workload: what its users write, what the request looks like and what right/wrong answers are."""

    workload_id: str = ""
    task: str = ""
    # PII kinds that may be planted into user text without changing the correct answer.
    pii_kinds: tuple[str, ...] = ("email", "phone", "card")
    malformed_kinds: tuple[str, ...] = ()

    def sample(self, rng: random.Random) -> Example:
        raise NotImplementedError

    def request(self, rng: random.Random, text: str, model: str, stream: bool) -> dict[str, Any]:
        raise NotImplementedError

    def answer_message(self, rng: random.Random, answer: Any) -> tuple[dict[str, Any], str]:
        """(assistant message, finish_reason) that states `answer`."""
        raise NotImplementedError

    def wrong(self, rng: random.Random, example: Example) -> tuple[Any, dict[str, Any]]:
        """A plausible wrong answer and the detail to record."""
        raise NotImplementedError

    def malformed(self, rng: random.Random, example: Example) -> tuple[dict[str, Any], str, dict[str, Any]]:
        """(assistant message, finish_reason, detail) for a format-invalid answer."""
        raise NotImplementedError

    def truncated(self, rng: random.Random, example: Example) -> dict[str, Any]:
        """Assistant message cut off by max_tokens (finish_reason "length")."""
        message, _ = self.answer_message(rng, example.answer)
        content = message.get("content") or ""
        cut = rng.randint(max(1, len(content) // 3), max(1, len(content) - 2)) if len(content) > 3 else 1
        return assistant_message(content[:cut])

    def refusal(self, rng: random.Random, text: str) -> dict[str, Any]:
        return assistant_message(text)


def cut_text(rng: random.Random, text: str) -> str:
    """A prefix of `text` that stops mid-way (at least one character short)."""
    if len(text) <= 3:
        return text[:1]
    return text[: rng.randint(max(2, len(text) // 4), len(text) - 2)]
