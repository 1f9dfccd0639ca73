"""The price catalog: snapshot and provider resolution, dated entries with sources, overrides."""

from __future__ import annotations

import re

import pytest

from flywheel.pricing import Price, PriceCatalog, config_hint, strip_snapshot

CATALOG = PriceCatalog.load()


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("o3-mini-2025-01-31", "o3-mini"),  # its own base model, not o3
        ("o3-2025-04-16", "o3"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # a snapshot with its own price wins
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("gpt-4-0613", "gpt-4"),
        ("GPT-4o", "gpt-4o"),
        ("openai/gpt-4o", "gpt-4o"),
        ("anthropic/claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
        ("claude-3-7-sonnet@20250219", "claude-3-7-sonnet"),
        ("meta/llama-3.3-70b-instruct", "meta/llama-3.3-70b-instruct"),
        ("meta-llama/Llama-3.3-70B-Instruct-Turbo", "meta/llama-3.3-70b-instruct"),
        ("llama-3.1-8b-instruct", "meta/llama-3.1-8b-instruct"),
        ("nvidia/llama-3.1-nemotron-70b-instruct", "nvidia/llama-3.1-nemotron-70b-instruct"),
        ("Qwen/Qwen2.5-72B-Instruct-Turbo", "qwen/qwen2.5-72b-instruct"),
        ("mistral-large-2411", "mistral-large"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
    ],
)
def test_resolution(model: str, key: str) -> None:
    found = CATALOG.resolve(model)
    assert found is not None and found.key == key


@pytest.mark.parametrize("model", ["mystery-model", "o3mini", "gpt-4x", "", None, 42])
def test_unknown_names_are_unpriced_not_guessed(model: object) -> None:
    assert CATALOG.resolve(model) is None  # type: ignore[arg-type]
    assert CATALOG.cost(model, 100, 10) is None  # type: ignore[arg-type]


def test_prefixes_never_cross_a_name_boundary() -> None:
    catalog = PriceCatalog({"gpt-4": Price(30, 60), "o3": Price(2, 8)})
    assert catalog.resolve("gpt-4o") is None  # not gpt-4
    assert catalog.resolve("o3mini") is None
    # without its own entry a variant takes its family's price, at a `-` boundary only
    assert catalog.resolve("o3-mini-2025-01-31").key == "o3"  # type: ignore[union-attr]
    assert catalog.resolve("gpt-4-turbo-2024-04-09").key == "gpt-4"  # type: ignore[union-attr]


def test_every_entry_is_dated_and_sourced() -> None:
    for model in ("gpt-4o", "claude-sonnet-4", "gemini-2.5-pro", "meta/llama-3.3-70b-instruct", "qwen-max",
                  "mistral-small", "nvidia/llama-3.1-nemotron-70b-instruct"):  # fmt: skip
        price = CATALOG.price(model)
        assert price is not None and price.source and price.source.startswith("https://")
        assert price.as_of and re.fullmatch(r"\d{4}-\d{2}(-\d{2})?", price.as_of)


def test_overrides_come_from_config_and_win() -> None:
    overrides = {"gpt-4o": {"input": 1.0, "output": 4.0}, "acme-llm": {"input": 3, "output": 9}}
    catalog = PriceCatalog.load(overrides)
    assert catalog.price("gpt-4o-2024-08-06") == Price(1.0, 4.0, None, "config")
    assert catalog.cost("acme-llm", 1_000_000, 0) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="numeric 'input' and 'output'"):
        PriceCatalog.load({"bad": {"input": "x"}})


def test_no_tokens_is_no_cost() -> None:
    assert CATALOG.cost("gpt-4o", None, None) is None  # unknown tokens: unknown, not $0
    assert CATALOG.cost("gpt-4o", 1_000_000, None) == pytest.approx(2.5)


def test_snapshot_suffixes_and_the_config_hint() -> None:
    assert strip_snapshot("o3-mini-2025-01-31") == "o3-mini"
    assert strip_snapshot("claude-opus-4-20250514") == "claude-opus-4"
    assert strip_snapshot("llama-3.1-8b-instruct") == "llama-3.1-8b-instruct"
    assert config_hint("acme") == (
        'prices: {"acme": {"input": <USD per 1M input tokens>, "output": <USD per 1M output>}}'
    )
