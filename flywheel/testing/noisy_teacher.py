"""A teacher that knows the gold answers and errs at a known rate, for teacher-noise experiments.

`NoisyGoldTeacher(gold, labels, error_rate, seed)` is an oracle for the fake OpenAI server: it looks up
the gold label of the request's last user message and, independently for every call (so the k
samples of a majority vote are k independent draws), answers a different random label with
probability `error_rate`. Draws hash (seed, text, attempt number), so a run is reproducible whatever
order concurrent requests arrive in. Answers take the shape the request asks for (plain label, or
{"label": ...} under a json_schema response_format). Loopback and tests only: it is not a model.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from flywheel.testing.oracles import answer_in_request_format, last_user_text


class NoisyGoldTeacher:
    def __init__(
        self, gold: Mapping[str, str], labels: Sequence[str], error_rate: float, seed: int = 0
    ) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError(f"error_rate must be in [0, 1], got {error_rate}")
        if len(set(labels)) < 2:
            raise ValueError("a noisy teacher needs at least two labels to be wrong with")
        self.gold = dict(gold)
        self.labels = list(labels)
        self.error_rate = error_rate
        self.seed = seed
        self.stats: Counter[str] = Counter()
        self._attempts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, request: dict[str, Any]) -> str | dict[str, Any]:
        text = last_user_text(request).strip()
        with self._lock:
            attempt = self._attempts[text]
            self._attempts[text] += 1
        return answer_in_request_format(request, self.answer(text, attempt))

    def answer(self, text: str, attempt: int = 0) -> str:
        """The label given for `text` on its `attempt`-th call."""
        rng = random.Random(f"{self.seed}:{attempt}:{text}")
        gold = self.gold.get(text)
        wrong = rng.random() < self.error_rate
        with self._lock:
            self.stats["calls"] += 1
            self.stats["unknown_text" if gold is None else "wrong" if wrong else "right"] += 1
        if gold is None:
            return rng.choice(self.labels)
        if wrong:
            return rng.choice([label for label in self.labels if label != gold])
        return gold
