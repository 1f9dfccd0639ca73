"""Token counting: real tokenizers loaded offline, one counting rule for every request."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import quicktok

from flywheel.costs import tokens
from flywheel.costs.tokens import (
    ESTIMATE,
    TokenizerUnavailable,
    counter_for,
    encoding_name,
    shipped_ranks,
    tiktoken_encoding,
)

SAMPLE = (
    "Bonjour, ça va? 日本語のテキスト 🚀 Ünïcödé  tabs\tand\nnewlines 12345678 don't <|endoftext|> "
    'def f(x): return {"a": [1, 2.5e-3]}  العربية Ελληνικά'
)


def _clear_tokenizer_caches() -> None:
    for cached in (tokens.tiktoken_encoding, tokens.counter, tokens.estimate_counter):
        cached.cache_clear()


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Any socket connection fails, and tiktoken's download cache is an empty folder."""

    def refuse(*_args, **_kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    _clear_tokenizer_caches()
    yield
    _clear_tokenizer_caches()


def test_openai_encodings_load_offline_and_match_an_independent_implementation(
    no_network, tmp_path: Path
) -> None:
    for name, hello in (("o200k_base", [24912, 2375]), ("cl100k_base", [15339, 1917])):
        encoding = tiktoken_encoding(name)
        assert encoding.name == name
        assert encoding.encode("hello world") == hello
        # quicktok's own C++ encoder is a second implementation of the same BPE
        assert encoding.encode_ordinary(SAMPLE) == quicktok.get_encoding(name).encode_ordinary(SAMPLE)
        assert encoding.decode(encoding.encode_ordinary(SAMPLE)) == SAMPLE
    assert not (tmp_path / "empty-cache").exists()  # nothing was fetched, nothing cached


def test_tampered_ranks_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    real = tokens.resources.files("quicktok").joinpath("data", "o200k.vocab").read_bytes()
    tampered = bytearray(real)
    tampered[10] ^= 0xFF  # one byte of one token

    class Fake:
        def joinpath(self, *_parts: str) -> Fake:
            return self

        def read_bytes(self) -> bytes:
            return bytes(tampered)

    monkeypatch.setattr(tokens.resources, "files", lambda _package: Fake())
    with pytest.raises(TokenizerUnavailable, match="sha256"):
        shipped_ranks("o200k_base")


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),
        ("o3-mini-2025-01-31", "o200k_base"),
        ("gpt-5-nano", "o200k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("meta/llama-3.3-70b-instruct", "llama3"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3"),
        ("nvidia/llama-3.1-nemotron-70b-instruct", "llama3"),
        ("Qwen/Qwen2.5-72B-Instruct", "qwen3"),
        ("claude-sonnet-4-20250514", None),
        ("gemini-2.5-flash", None),
        ("codellama-34b", None),
        ("meta/llama-4-scout-17b-16e-instruct", None),
    ],
)
def test_model_families(model: str, encoding: str | None) -> None:
    assert encoding_name(model) == encoding


def test_counter_methods_name_the_route() -> None:
    assert counter_for("gpt-4o").method == "tiktoken:o200k_base"
    assert counter_for("meta/llama-3.3-70b-instruct").method == "quicktok:llama3"
    assert counter_for("claude-3-5-haiku").method == ESTIMATE
    assert counter_for(None).method == ESTIMATE
    assert counter_for("meta/llama-3.3-70b-instruct").text(SAMPLE) == quicktok.get_encoding("llama3").count(
        SAMPLE
    )


def test_a_request_counts_every_message_tools_and_response_format() -> None:
    encoding = tiktoken_encoding("o200k_base")

    def n(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    parts = [{"type": "text", "text": "Where is "}, {"type": "image_url"}, {"type": "text", "text": "it?"}]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    schema = {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": '{"id": 7}'}}
    request = {
        "messages": [
            {"role": "system", "content": "You route tickets."},
            {"role": "user", "content": parts},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "content": "shipped", "name": "lookup"},
        ],
        "tools": tools,
        "response_format": schema,
    }
    expected = 3  # the reply's priming
    expected += 3 + n("system") + n("You route tickets.")
    expected += 3 + n("user") + n("Where is it?")
    expected += 3 + n("assistant") + n("lookup") + n('{"id": 7}')
    expected += 3 + n("tool") + n("shipped") + n("lookup") + 1
    expected += n(json.dumps(tools, sort_keys=True, separators=(",", ":")))
    expected += n(json.dumps(schema, sort_keys=True, separators=(",", ":")))
    counter = counter_for("gpt-4o")
    assert counter.request(request) == expected
    answer = {"role": "assistant", "content": "ok", "tool_calls": [call]}
    assert counter.answer(answer) == n("ok") + n("lookup") + n('{"id": 7}')
    assert counter.request({"messages": "not a list"}) == 3 and counter.answer(None) == 0


def test_the_estimate_is_a_quarter_of_the_characters_rounded_up() -> None:
    counter = counter_for("some-unknown-model")
    assert counter.estimated and counter.text("abcde") == 2 and counter.text("") == 0


def test_tiktokens_own_loader_cannot_work_here(no_network) -> None:
    """The reason for the shipped ranks: tiktoken fetches its BPE files at run time."""
    import tiktoken.registry

    tiktoken.registry.ENCODINGS.pop("cl100k_base", None)
    with pytest.raises(Exception):  # noqa: B017 - requests' ConnectionError over the refused socket
        tiktoken.get_encoding("cl100k_base")
