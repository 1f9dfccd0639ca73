"""Support tickets as logged chat calls, with a keyword teacher that labels them: the traffic of the
loopback flow tests (each picks its own kinds, filler words and words per ticket)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from flywheel.testing.oracles import last_user_text
from tests.conftest import chat_record


@dataclass(frozen=True)
class Tickets:
    kinds: dict[str, str]  # label -> the sentence every ticket of that kind starts with
    words: list[str]  # filler words that make each ticket's text distinct
    per_ticket: int  # filler words per ticket

    def text(self, kind: str, i: int) -> str:
        filler = " ".join(random.Random(f"{kind}{i}").sample(self.words, self.per_ticket))
        return f"{self.kinds[kind]} ({filler}) #{i}"

    def oracle(self, request: dict[str, Any]) -> str:
        """The teacher: the kind whose sentence the last user message starts with."""
        text = last_user_text(request)
        return next(label for label, words in self.kinds.items() if text.startswith(words))

    def logged_call(self, kind: str, i: int) -> dict[str, Any]:
        return chat_record(i, kind, content=self.text(kind, i), prompt_tokens=40, client_id="app")
