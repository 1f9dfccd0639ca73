"""Price catalog: USD per 1M input/output tokens per model, from a packaged YAML plus overrides.

A logged model name resolves to a catalog entry in this order (case-insensitive), first hit wins:
1. the name as logged (`meta/llama-3.3-70b-instruct`), then without its provider prefix
   (`llama-3.3-70b-instruct`; a catalog key with a prefix also answers to its bare name);
2. the same names with a snapshot suffix removed: an ISO date (`o3-mini-2025-01-31`), an 8-digit
   date (`claude-sonnet-4-20250514`, `@20240620`), a 4-digit MMDD (`gpt-4-0613`) or `-latest`;
3. the longest catalog key that prefixes that stripped name at a `-` boundary
   (`llama-3.3-70b-instruct-turbo` -> `llama-3.3-70b-instruct`; never `o3-mini` -> `o3`,
   `gpt-4o` -> `gpt-4`).
A model that resolves to nothing is unpriced: unknown, not free. `config_hint` is the flywheel.yaml
line that prices it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

# Snapshot suffixes that name a dated build of a base model.
SNAPSHOT_SUFFIX = re.compile(r"(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})|-latest)$")


@dataclass(frozen=True, slots=True)
class Price:
    input_per_1m: float
    output_per_1m: float
    as_of: str | None = None  # when the source published this price
    source: str | None = None  # where it was read (URL), or "config"

    def cost(self, prompt_tokens: int | None, completion_tokens: int | None) -> float:
        return (
            (prompt_tokens or 0) * self.input_per_1m + (completion_tokens or 0) * self.output_per_1m
        ) / 1e6


@dataclass(frozen=True, slots=True)
class Resolved:
    """The catalog entry a logged model name resolved to."""

    key: str
    price: Price


class PriceCatalog:
    """Looks up a model's price by name (see the module docstring for the resolution order)."""

    def __init__(self, prices: dict[str, Price]) -> None:
        self._prices = dict(prices)
        self._keys: dict[str, str] = {}  # normalized name -> catalog key (exact names win over bare)
        for key in self._prices:
            self._keys.setdefault(bare_name(key), key)
        for key in self._prices:
            self._keys[key.lower()] = key
        self._by_length = sorted(self._keys, key=len, reverse=True)
        self._resolved: dict[str, Resolved | None] = {}

    @classmethod
    def load(
        cls, overrides: dict[str, dict[str, Any]] | None = None, path: Path | None = None
    ) -> PriceCatalog:
        """The packaged catalog (or `path`), with `overrides` (flywheel.yaml `prices:`) on top."""
        text = path.read_text() if path else resources.files(__package__).joinpath("prices.yaml").read_text()
        raw: dict[str, Any] = yaml.safe_load(text) or {}
        prices = {model: _price(model, entry, None) for model, entry in raw.items()}
        prices |= {model: _price(model, entry, "config") for model, entry in (overrides or {}).items()}
        return cls(prices)

    def resolve(self, model: str | None) -> Resolved | None:
        if not model or not isinstance(model, str):  # a log's "model" can hold anything: not a name
            return None
        if model not in self._resolved:  # ingestion asks once per record: resolve each name once
            self._resolved[model] = self._lookup(model)
        return self._resolved[model]

    def price(self, model: str | None) -> Price | None:
        found = self.resolve(model)
        return found.price if found else None

    def _lookup(self, model: str) -> Resolved | None:
        names = list(dict.fromkeys([model.strip().lower(), bare_name(model)]))
        stripped = list(dict.fromkeys(strip_snapshot(name) for name in names))
        for name in [*names, *stripped]:
            if name in self._keys:
                return self._hit(name)
        for name in stripped:
            for key in self._by_length:
                if name.startswith(key + "-"):
                    return self._hit(key)
        return None

    def _hit(self, normalized: str) -> Resolved:
        key = self._keys[normalized]
        return Resolved(key, self._prices[key])

    def cost(
        self, model: str | None, prompt_tokens: int | None, completion_tokens: int | None
    ) -> float | None:
        """USD for one call, or None when the model is not in the catalog or the call logged no token
        counts (unknown is not free: the teacher cost model counts them, flywheel/costs/teacher_cost.py)."""
        price = self.price(model)
        if price is None or (prompt_tokens is None and completion_tokens is None):
            return None
        return price.cost(prompt_tokens, completion_tokens)

    def __contains__(self, model: str) -> bool:
        return self.price(model) is not None


def bare_name(model: str) -> str:
    """Lower case, no provider prefix: `meta/Llama-3.3-70B-Instruct` -> `llama-3.3-70b-instruct`."""
    return model.strip().lower().rsplit("/", 1)[-1]


def strip_snapshot(name: str) -> str:
    """`o3-mini-2025-01-31` -> `o3-mini`; `claude-3-5-haiku-latest` -> `claude-3-5-haiku`."""
    return SNAPSHOT_SUFFIX.sub("", name)


def config_hint(model: str) -> str:
    """The flywheel.yaml line that prices `model` (USD per 1M tokens)."""
    return f'prices: {{"{model}": {{"input": <USD per 1M input tokens>, "output": <USD per 1M output>}}}}'


def _price(model: str, entry: Any, source: str | None) -> Price:
    try:
        return Price(
            float(entry["input"]),
            float(entry["output"]),
            str(entry["as_of"]) if entry.get("as_of") is not None else None,
            source or (str(entry["source"]) if entry.get("source") else None),
        )
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"price for {model!r} needs numeric 'input' and 'output' ($/1M tokens)") from exc
