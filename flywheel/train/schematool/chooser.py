"""The bi-encoder function chooser: cheap enough to train on agent traffic on a CPU.

The cross-encoder chooser (model.py `choose`) encodes every (function, conversation) pair: an agent
offering 16 tools costs 17 long encodings per step. Here the conversation is encoded once and each
distinct function text once (cached by its text at serving time, since a workload's schemas repeat),
and a step's scores are cosines between a learned projection of the conversation and the option
vectors; "reply in text" is a learned vector in the same space.

What the chooser reads (`chooser_text`) is built for multi-turn agents: system prompt dropped, every
turn marked with its role, tool results clipped (their ids matter to the filler, not to what comes
next), then a state line the next action depends on (who spoke last, the tools already called, whether
the last tool result was an error, the latest user request), at the end so that left truncation
keeps it.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from typing import Any

import orjson

from flywheel.records import message_text
from flywheel.train.schematool.data import Function, function_text, readable

CLIP = 160  # characters kept of each tool result and call's arguments in the chooser's view
USER_CLIP = 300  # characters of the latest user request repeated in the state line
CACHE_SIZE = 4096  # function vectors kept by a serving student (one per distinct function text)


def chooser_text(messages: list[dict[str, Any]], clip: int = CLIP) -> str:
    """The conversation as the chooser reads it: roles marked, tool output clipped, state line last."""
    turns, called, names = [], [], {}
    last_error, last_user = None, ""
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            continue
        text = message_text(message).strip()
        if role == "assistant" and message.get("tool_calls"):
            calls = []
            for call in message["tool_calls"]:
                function = call.get("function") or {}
                name = str(function.get("name") or "")
                names[call.get("id")] = name
                called.append(name)
                calls.append(f"{name}({_arguments(function.get('arguments'))[:clip]})")
            text = f"{text} calls {'; '.join(calls)}".strip()
        elif role == "tool":
            name = names.get(message.get("tool_call_id")) or message.get("name") or "tool"
            last_error = is_error(text)
            text = f"{name} {'error' if last_error else 'result'}: {text[:clip]}"
        elif role == "user":
            last_user = text
        turns.append(f"{role}: {text}")
    return "\n".join([*turns, state_line(messages, called, last_error, last_user)])


def state_line(messages: list[dict[str, Any]], called: list[str], last_error: bool | None, user: str) -> str:
    last = next((m for m in reversed(messages) if m.get("role") not in ("system", "developer")), {})
    role = last.get("role") or "none"
    if role == "assistant" and last.get("tool_calls"):
        role = "assistant call"
    parts = [f"state: last message from {role}"]
    if role == "tool" and called:  # what just came back decides the next step most often
        parts[0] += f" ({readable(called[-1])} {'error' if last_error else 'ok'})"
    elif last_error is not None:
        parts.append(f"last tool result {'error' if last_error else 'ok'}")
    parts.append("called: " + (", ".join(readable(n) for n in called[-8:]) if called else "nothing yet"))
    if user and role != "user":
        parts.append(f"latest user request: {user[:USER_CLIP]}")
    return " | ".join(parts)


def is_error(text: str) -> bool:
    """A tool result that reports a failure (an "Error: ..." string or an {"error": ...} object)."""
    head = text.lstrip()[:40].lower()
    if head.startswith(("error", "failed", "exception", "traceback")):
        return True
    if head.startswith("{"):
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError:
            return False
        return isinstance(value, dict) and bool(value.get("error"))
    return False


def _arguments(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    return orjson.dumps(raw).decode() if raw is not None else ""


def build_bi_head(hidden: int) -> Any:
    import torch
    from torch import nn

    class BiChooserHead(nn.Module):
        """Cosine scores of the projected conversation against [reply-in-text, *function vectors]."""

        def __init__(self) -> None:
            super().__init__()
            # identity start: MiniLM's own sentence space (cosine-trained) is the prior
            self.context = nn.Linear(hidden, hidden)
            nn.init.eye_(self.context.weight)
            nn.init.zeros_(self.context.bias)
            self.text = nn.Parameter(torch.randn(hidden) * 0.05)
            self.log_scale = nn.Parameter(torch.tensor(math.log(20.0)))

        def forward(self, contexts: Any, functions: Any) -> Any:
            c = nn.functional.normalize(self.context(contexts), dim=-1)
            options = nn.functional.normalize(torch.cat([self.text[None], functions]), dim=-1)
            return c @ options.T * self.log_scale.exp().clamp(max=100.0)

    return BiChooserHead()


def encode_single(tokenizer: Any, texts: list[str], max_length: int, side: str) -> dict[str, Any]:
    """Texts as one padded batch, cut on `side` (left for conversations: keep the newest)."""
    previous = tokenizer.truncation_side
    tokenizer.truncation_side = side
    try:
        return tokenizer(texts, truncation=True, max_length=max_length, padding=True, return_tensors="pt")
    finally:
        tokenizer.truncation_side = previous


FUNCTION_TOKENS = 128  # function_text is capped at 360 characters: this rarely cuts


def option_scores(model: Any, tokenizer: Any, contexts: list[str], functions: list[str], max_length: int,
                  vectors: Any = None) -> tuple[Any, int]:  # fmt: skip
    """(scores [len(contexts), 1 + len(functions)], tokens read); column 0 is "reply in text".
    `vectors` (the functions' pooled encodings) skips encoding them again."""
    batch = encode_single(tokenizer, contexts, max_length, "left")
    pooled = model.pool(batch)
    tokens = int(batch["attention_mask"].sum())
    if vectors is None:
        encoded = encode_single(tokenizer, functions, FUNCTION_TOKENS, "right")
        vectors = model.pool(encoded)
        tokens += int(encoded["attention_mask"].sum())
    return model.bi(pooled, vectors), tokens


class FunctionCache:
    """Pooled function vectors by function text, least recently used out first (serving only)."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self.vectors: OrderedDict[str, Any] = OrderedDict()

    def get(self, model: Any, tokenizer: Any, texts: list[str]) -> Any:
        import torch

        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        if missing:
            encoded = encode_single(tokenizer, missing, FUNCTION_TOKENS, "right")
            for text, vector in zip(missing, model.pool(encoded), strict=True):
                self.vectors[text] = vector
        for text in texts:
            self.vectors.move_to_end(text)
        while len(self.vectors) > self.size:
            self.vectors.popitem(last=False)
        return torch.stack([self.vectors[t] for t in texts])


def choose_bi(model: Any, tokenizer: Any, messages: list[dict[str, Any]], offered: list[Function],
              cache: FunctionCache, max_length: int) -> tuple[int, float, int]:  # fmt: skip
    """(index among [text, *offered], its probability, conversation tokens read)."""
    texts = [function_text(f) for f in offered]
    vectors = cache.get(model, tokenizer, texts) if texts else _empty(model)
    scores, tokens = option_scores(model, tokenizer, [chooser_text(messages)], texts, max_length, vectors)
    probs = scores[0].float().softmax(-1)
    best = int(probs.argmax())
    return best, float(probs[best]), tokens


def _empty(model: Any) -> Any:
    import torch

    return torch.zeros(0, model.config.hidden_size)


def bi_chooser_loss(model: Any, tokenizer: Any, items: list, pool: list[Function], options: Any,
                    rng: random.Random) -> tuple[Any, int]:  # fmt: skip
    """Cross-entropy over each conversation's own options: the text vector, every offered function
    (encoded once per batch, however many conversations offer it) and a few distractors from other
    conversations. With probability `text_option_rate` the right function is withheld, so "reply in
    text" is the answer (a request whose tools do not fit)."""
    import torch

    texts: dict[str, int] = {}
    rows, targets = [], []
    for item in items:
        names = {f.name for f in item.offered}
        target = item.target
        if target is not None and rng.random() < options.text_option_rate:
            target = None
        sampled = rng.sample(pool, min(len(pool), options.negatives + 4))
        distractors = [f for f in sampled if f.name not in names][: options.negatives]
        chosen = [f for f in item.offered if target is not None or f.name != item.target] + distractors
        columns = [texts.setdefault(function_text(f), len(texts)) for f in chosen]
        rows.append(columns)
        right = [c for f, c in zip(chosen, columns, strict=True) if f.name == target]
        targets.append(1 + right[0] if right else 0)
    scores, tokens = option_scores(model, tokenizer, [i.context for i in items], list(texts),
                                   options.chooser_max_length)  # fmt: skip
    allowed = torch.zeros_like(scores, dtype=torch.bool)
    allowed[:, 0] = True
    for row, columns in enumerate(rows):
        allowed[row, [1 + c for c in columns]] = True
    masked = scores.masked_fill(~allowed, float("-inf"))
    return torch.nn.functional.cross_entropy(masked, torch.tensor(targets)), tokens
