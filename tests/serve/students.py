"""Student loaders importable by a `flywheel serve` subprocess (serve.student_loader: module:function)."""

from __future__ import annotations

from pathlib import Path

from flywheel.records import Example, Prediction, message_text


class KeywordStudent:
    """Answers 'billing' when the ticket mentions money, else 'shipping'; always sure of itself."""

    def __init__(self, name: str) -> None:
        self.name = name

    def predict(self, examples: list[Example]) -> list[Prediction]:
        out = []
        for example in examples:
            text = message_text(example.messages[-1])
            label = "billing" if "charge" in text else "shipping"
            out.append(Prediction({"role": "assistant", "content": label}, 0.95, len(text.split()), 1))
        return out


def keyword_loader(path: Path) -> KeywordStudent:
    return KeywordStudent(path.name)
