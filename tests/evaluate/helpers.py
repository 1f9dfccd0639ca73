"""Small predictors, examples and registry rows for the evaluation tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from flywheel.config import GateConfig, WorkloadConfig
from flywheel.records import Example, Prediction, utcnow
from flywheel.store.db import Warehouse

LABELS = ["billing", "shipping", "refund"]


def classification_workload(**gate: Any) -> WorkloadConfig:
    return WorkloadConfig(
        id="routing",
        task="classification",
        labels=LABELS,
        label_parser={"regex": r"^\s*([a-z_]+)\s*$"},
        gate=GateConfig(**gate),
    )


def label_examples(counts: dict[str, int], gold: bool = True) -> list[Example]:
    """Examples whose gold label (and slice) is the label; the logged target agrees with gold."""
    out = []
    for label, count in counts.items():
        for i in range(count):
            out.append(
                Example(
                    example_id=f"{label}-{i}",
                    workload_id="routing",
                    messages=[{"role": "user", "content": f"ticket about {label} number {i}"}],
                    target={"role": "assistant", "content": label},
                    label=label,
                    gold=label if gold else None,
                    slice=label,
                    split="eval",
                    interaction_id=f"ix-{label}-{i}",
                )
            )
    return out


class FnPredictor:
    """Answers each example with `answer(example)` (a content string or an assistant message)."""

    def __init__(self, name: str, answer: Callable[[Example], Any], delay_s: float = 0.0) -> None:
        self.name = name
        self._answer = answer
        self.delay_s = delay_s
        self.calls = 0

    def predict(self, examples: list[Example]) -> list[Prediction]:
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s * len(examples))
        out = []
        for example in examples:
            answer = self._answer(example)
            message = answer if isinstance(answer, dict) else {"role": "assistant", "content": answer}
            out.append(Prediction(message=message, completion_tokens=2))
        return out


def gold_predictor(name: str = "good", delay_s: float = 0.0) -> FnPredictor:
    return FnPredictor(name, lambda e: e.gold, delay_s)


def wrong_on_slice(name: str, bad_slice: str, every: int = 1, delay_s: float = 0.0) -> FnPredictor:
    """Right everywhere except `bad_slice`, where every `every`-th example is answered wrongly."""

    def answer(example: Example) -> str:
        index = int(example.example_id.rsplit("-", 1)[1])
        if example.slice == bad_slice and index % every == 0:
            return next(label for label in LABELS if label != example.gold)
        return example.gold or ""

    return FnPredictor(name, answer, delay_s)


class ApiPredictor(FnPredictor):
    """An API model (priced by tokens): fixed usage per answer."""

    def __init__(
        self, name: str, model: str, answer: Callable[[Example], Any], tokens: tuple[int, int]
    ) -> None:
        super().__init__(name, answer)
        self.model = model
        self.tokens = tokens

    def predict(self, examples: list[Example]) -> list[Prediction]:
        out = super().predict(examples)
        for prediction in out:
            prediction.prompt_tokens, prediction.completion_tokens = self.tokens
            prediction.latency_ms = 500.0
        return out


def insert_model(
    warehouse: Warehouse, home: Path, model_id: str, workload_id: str = "routing", stage: str = "candidate"
) -> Path:
    """A models row plus its artifact directory (relative to home, as training writes it)."""
    relative = Path("models") / model_id.replace("/", "__")
    (home / relative).mkdir(parents=True, exist_ok=True)
    warehouse.write(
        lambda con: con.execute(
            "INSERT INTO models (model_id, workload_id, name, kind, base, method, path, snapshot_id, "
            "params, config, code_version, teacher, stage, created_at) VALUES (?, ?, ?, 'scratch', "
            "'scratch', 'full', ?, 'snap-1', 3700000, ?, 'abc123', 'gpt-4o-mini', ?, ?)",
            [
                model_id,
                workload_id,
                model_id.split("/")[-1],
                str(relative),
                orjson.dumps({"lr": 1e-3}).decode(),
                stage,
                utcnow(),
            ],
        )
    )
    return home / relative
