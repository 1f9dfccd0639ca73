"""Price catalog: USD per 1M input/output tokens per model, from a packaged YAML plus overrides."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True, slots=True)
class Price:
    input_per_1m: float
    output_per_1m: float

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return (
            (prompt_tokens or 0) * self.input_per_1m + (completion_tokens or 0) * self.output_per_1m
        ) / 1e6


class PriceCatalog:
    """Looks up a model's price by exact name, then by the longest catalog key that prefixes it."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = dict(prices)
        self._by_length = sorted(self._prices, key=len, reverse=True)
        self._resolved: dict[str, Price | None] = {}

    @classmethod
    def load(
        cls, overrides: dict[str, dict[str, float]] | None = None, path: Path | None = None
    ) -> PriceCatalog:
        text = path.read_text() if path else resources.files(__package__).joinpath("prices.yaml").read_text()
        raw: dict[str, Any] = yaml.safe_load(text) or {}
        raw.update(overrides or {})
        prices = {}
        for model, entry in raw.items():
            try:
                prices[model] = Price(float(entry["input"]), float(entry["output"]))
            except (KeyError, TypeError, ValueError) as exc:
                raise ValueError(
                    f"price for {model!r} needs numeric 'input' and 'output' ($/1M tokens)"
                ) from exc
        return cls(prices)

    def price(self, model: str | None) -> Price | None:
        if not model or not isinstance(model, str):  # a log's "model" can hold anything: not a name
            return None
        if model not in self._resolved:  # ingestion asks once per record: resolve each name once
            self._resolved[model] = self._lookup(model)
        return self._resolved[model]

    def _lookup(self, model: str) -> Price | None:
        if model in self._prices:
            return self._prices[model]
        bare = model.split("/", 1)[1] if model.count("/") == 1 and model not in self._prices else model
        for key in self._by_length:
            if bare.startswith(key) or model.startswith(key):
                return self._prices[key]
        return None

    def cost(
        self, model: str | None, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        """USD for one call, or None when the model is not in the catalog (unknown is not free)."""
        price = self.price(model)
        return None if price is None else price.cost(prompt_tokens, completion_tokens)

    def __contains__(self, model: str) -> bool:
        return self.price(model) is not None
