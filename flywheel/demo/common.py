"""Pieces every demo workload shares: the OpenAI envelope, clients, clock, tokens and PII makers.

Everything takes an explicit `random.Random`, never the wall clock, so one seed gives one byte stream.
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field
from typing import Any

import orjson

# 2025-06-02 00:00:00 UTC (a Monday); traffic spans DAYS days from here.
BASE_TS = 1_748_822_400
DAYS = 14
END_TS = BASE_TS + DAYS * 86_400

# ~8 clients; one dominates (~50% of traffic). Values: (weight, share of calls that use gpt-4o).
CLIENTS: dict[str, tuple[float, float]] = {
    "acme-helpdesk": (50.0, 0.05),
    "globex-web": (12.0, 0.10),
    "initech-mobile": (10.0, 0.05),
    "umbrella-crm": (9.0, 0.60),
    "hooli-chat": (7.0, 0.10),
    "stark-retail": (6.0, 0.50),
    "wayne-ops": (4.0, 0.10),
    "wonka-shop": (2.0, 0.00),
}
MODEL_SNAPSHOTS = {"gpt-4o-mini": "gpt-4o-mini-2024-07-18", "gpt-4o": "gpt-4o-2024-08-06"}
FINGERPRINTS = {"gpt-4o-mini": ("fp_34a54ae93c", "fp_0ba0d124f1"), "gpt-4o": ("fp_a288987b44",)}
APP_VERSIONS = {"acme-helpdesk": "4.12.0", "globex-web": "2.3.1", "initech-mobile": "7.0.2"}

# Share of traffic per hour of day (UTC) and per weekday (Mon..Sun): business hours dominate.
HOUR_WEIGHTS = (2, 1, 1, 1, 1, 2, 4, 7, 10, 12, 13, 13, 12, 12, 13, 13, 12, 10, 8, 7, 6, 5, 4, 3)
DAY_WEIGHTS = (10, 10, 10, 10, 9, 5, 4)

ALNUM = string.ascii_letters + string.digits


@dataclass
class Example:
    """One clean request's content: the user text, the correct answer and what must stay verbatim."""

    text: str
    answer: Any
    slice: str
    protected: list[str] = field(default_factory=list)
    pii: list[dict[str, str]] = field(default_factory=list)


def weighted(rng: random.Random, table: dict[str, float]) -> str:
    keys = list(table)
    return rng.choices(keys, weights=[table[k] for k in keys])[0]


def pick_client(rng: random.Random) -> tuple[str, str]:
    """(client_id, request model) for one call."""
    client = rng.choices(list(CLIENTS), weights=[w for w, _ in CLIENTS.values()])[0]
    model = "gpt-4o" if rng.random() < CLIENTS[client][1] else "gpt-4o-mini"
    return client, model


def pick_timestamp(rng: random.Random) -> float:
    day = rng.choices(range(DAYS), weights=[DAY_WEIGHTS[d % 7] for d in range(DAYS)])[0]
    hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
    return round(BASE_TS + day * 86_400 + hour * 3600 + rng.random() * 3600, 3)


def rand_id(rng: random.Random, prefix: str, length: int, alphabet: str = ALNUM) -> str:
    return prefix + "".join(rng.choices(alphabet, k=length))


def tokens(text: str) -> int:
    """Rough token count: ~4 characters per token."""
    return max(1, math.ceil(len(text) / 4))


def prompt_tokens(request: dict[str, Any]) -> int:
    total = 3
    for message in request["messages"]:
        total += 4 + tokens(message.get("content") or "")
    if request.get("tools"):
        total += tokens(orjson.dumps(request["tools"]).decode()) * 3 // 4
    if isinstance(request.get("response_format"), dict):
        total += tokens(orjson.dumps(request["response_format"]).decode()) * 3 // 4
    return total


def completion_tokens(message: dict[str, Any]) -> int:
    text = message.get("content") or message.get("refusal") or ""
    total = tokens(text) if text else 0
    for call in message.get("tool_calls") or []:
        total += 6 + tokens(call["function"]["name"]) + tokens(call["function"]["arguments"])
    return max(total, 1)


def usage(request: dict[str, Any], message: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    prompt = prompt_tokens(request)
    completion = completion_tokens(message)
    # Prompt caching applies to prompts of 1024+ tokens in 128-token steps of the shared prefix.
    static = prompt - tokens(request["messages"][-1].get("content") or "") - 8
    cached = (static // 128) * 128 if prompt >= 1024 and rng.random() < 0.7 else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def latency_ms(rng: random.Random, model: str, out_tokens: int, in_tokens: int) -> float:
    per_token = 16.0 if model == "gpt-4o" else 8.0
    base = 320.0 if model == "gpt-4o" else 190.0
    value = (base + per_token * out_tokens + 0.04 * in_tokens) * rng.lognormvariate(0.0, 0.25)
    return round(value, 1)


def assistant_message(
    content: str | None = None, tool_calls: list[dict[str, Any]] | None = None, refusal: str | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    message["refusal"] = refusal
    message["annotations"] = []
    return message


def tool_call(rng: random.Random, name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": rand_id(rng, "call_", 24),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def completion(
    rng: random.Random, request: dict[str, Any], message: dict[str, Any], finish_reason: str, created: int
) -> dict[str, Any]:
    model = request["model"]
    return {
        "id": rand_id(rng, "chatcmpl-", 29),
        "object": "chat.completion",
        "created": created,
        "model": MODEL_SNAPSHOTS[model],
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage(request, message, rng),
        "service_tier": "default",
        "system_fingerprint": rng.choice(FINGERPRINTS[model]),
    }


def to_chunks(rng: random.Random, full: dict[str, Any]) -> list[dict[str, Any]]:
    """Split a ChatCompletion into the chat.completion.chunk list a streaming client would log."""
    choice = full["choices"][0]
    message = choice["message"]
    head = {
        "id": full["id"],
        "object": "chat.completion.chunk",
        "created": full["created"],
        "model": full["model"],
        "service_tier": "default",
        "system_fingerprint": full["system_fingerprint"],
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

    chunks = [
        chunk(
            {"role": "assistant", "content": "" if not message.get("tool_calls") else None, "refusal": None}
        )
    ]
    for index, call in enumerate(message.get("tool_calls") or []):
        opener = {
            "index": index,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [opener]}))
        for piece in split_pieces(rng, call["function"]["arguments"]):
            chunks.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
    for piece in split_pieces(rng, message.get("content") or ""):
        chunks.append(chunk({"content": piece}))
    chunks.append(chunk({}, choice["finish_reason"]))
    chunks.append({**head, "choices": [], "usage": full["usage"]})
    return chunks


def split_pieces(rng: random.Random, text: str) -> list[str]:
    pieces, start = [], 0
    while start < len(text):
        step = rng.randint(2, 9)
        pieces.append(text[start : start + step])
        start += step
    return pieces


ERRORS = (
    # (weight, type, code, message, latency range ms)
    (
        5,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-Qm2T7cVhW8yF on requests per min (RPM): "
        "Limit 5000, Used 5000, Requested 1. Please try again in 12ms. Visit "
        "https://platform.openai.com/account/rate-limits to learn more.",
        (25, 120),
    ),
    (
        3,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
        (400, 4000),
    ),
    (2, "timeout", "timeout", "Request timed out.", (30000, 60000)),
    (
        1,
        "invalid_request_error",
        "context_length_exceeded",
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 131204 "
        "tokens. Please reduce the length of the messages.",
        (80, 300),
    ),
)


def error_response(rng: random.Random, model: str) -> tuple[dict[str, Any], float]:
    _, kind, code, message, (low, high) = rng.choices(ERRORS, weights=[e[0] for e in ERRORS])[0]
    body = {"error": {"message": message.format(model=model), "type": kind, "param": None, "code": code}}
    return body, round(rng.uniform(low, high), 1)


REFUSALS = (
    "I'm sorry, I can't help with that.",
    "I'm sorry, but I can't help with that request.",
    "I'm sorry, but I can't assist with that.",
    "I'm sorry, I can't help with that. Please contact a human agent.",
)

# ---------------------------------------------------------------------------------------------- PII

FIRST_NAMES = (
    "Maria",
    "James",
    "Aisha",
    "Wei",
    "Olga",
    "Carlos",
    "Priya",
    "Tom",
    "Fatima",
    "Lukas",
    "Sofia",
    "Kenji",
    "Amara",
    "Daniel",
    "Chloe",
    "Mateo",
    "Hannah",
    "Ravi",
    "Elena",
    "Noah",
    "Ingrid",
    "Omar",
    "Grace",
    "Diego",
    "Yuki",
    "Samuel",
    "Leila",
    "Piotr",
    "Zoe",
    "Kwame",
    "Ana",
    "Erik",
    "Nadia",
    "Jonas",
    "Mei",
    "Patrick",
    "Chiara",
    "Tariq",
    "Emma",
    "José",
    "Siobhan",
    "Arjun",
    "Lena",
    "Bruno",
)
LAST_NAMES = (
    "Gonzalez",
    "Smith",
    "Okafor",
    "Zhang",
    "Petrova",
    "Silva",
    "Sharma",
    "Becker",
    "Haddad",
    "Müller",
    "Rossi",
    "Tanaka",
    "Mensah",
    "Kowalski",
    "Dubois",
    "Fernández",
    "Nguyen",
    "O'Brien",
    "Johansson",
    "Khan",
    "Murphy",
    "Novak",
    "Andersen",
    "Costa",
    "Yilmaz",
    "Lindqvist",
    "Walker",
    "Ibrahim",
    "Park",
    "Moreau",
    "Schmidt",
    "Reyes",
    "Kim",
    "Bianchi",
    "Adeyemi",
    "Larsen",
    "Hughes",
    "Santos",
    "Weber",
)
EMAIL_DOMAINS = (
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "icloud.com",
    "proton.me",
    "hotmail.co.uk",
    "gmx.de",
    "fastmail.com",
    "acme-corp.com",
    "northwind.io",
)


def ascii_fold(text: str) -> str:
    table = str.maketrans("éáüóñçøå", "eauoncoa")
    return "".join(c for c in text.lower().translate(table) if c.isalnum())


def person(rng: random.Random) -> tuple[str, str]:
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def email_for(rng: random.Random, first: str | None = None, last: str | None = None) -> str:
    if first is None or last is None:
        first, last = person(rng)
    f, la = ascii_fold(first), ascii_fold(last)
    local = rng.choice(
        (
            f"{f}.{la}",
            f"{f[0]}{la}",
            f"{f}{la}{rng.randint(1, 99)}",
            f"{f}_{la}",
            f"{la}.{f}",
            f"{f}{rng.randint(70, 99)}",
        )
    )
    return f"{local}@{rng.choice(EMAIL_DOMAINS)}"


def phone(rng: random.Random) -> str:
    """A phone number in one of the formats people type (555-01xx and UK drama numbers: fictional)."""
    area = rng.choice(("212", "415", "312", "617", "512", "206", "303", "646"))
    line = f"01{rng.randint(0, 99):02d}"
    return rng.choice(
        (
            f"+1 {area}-555-{line}",
            f"({area}) 555-{line}",
            f"{area}.555.{line}",
            f"{area}-555-{line}",
            f"+1 ({area}) 555 {line}",
            f"+44 20 7946 0{rng.randint(0, 999):03d}",
            f"+44 7700 900{rng.randint(0, 999):03d}",
        )
    )


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_number(rng: random.Random) -> str:
    """A Luhn-valid payment card number, formatted the way customers paste them."""
    prefix, length = rng.choice(
        (("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("37", 15), ("6011", 16))
    )
    body = prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1))
    check = next(d for d in "0123456789" if luhn_ok(body + d))
    digits = body + check
    sep = rng.choice((" ", " ", "-", ""))
    if length == 15:
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        groups = [digits[i : i + 4] for i in range(0, 16, 4)]
    return sep.join(groups)


PII_SENTENCES = {
    "email": (
        "You can reach me at {v}.",
        "My email is {v} if you need it.",
        "please reply to {v}",
        "(my login email is {v})",
        "Contact: {v}",
        "write back to {v} pls",
    ),
    "phone": (
        "Call me on {v} if that's easier.",
        "my number is {v}",
        "Phone: {v}",
        "You can also text me at {v}.",
        "best number to reach me is {v}",
    ),
    "card": (
        "The card I used is {v}.",
        "card number {v} in case you need it",
        "It was charged to {v}.",
        "Payment card: {v} (exp 09/27)",
        "I paid with {v}",
    ),
}


def make_pii(rng: random.Random, kind: str) -> str:
    return {"email": lambda: email_for(rng), "phone": lambda: phone(rng), "card": lambda: card_number(rng)}[
        kind
    ]()


def plant_pii(rng: random.Random, example: Example, kinds: tuple[str, ...]) -> Example:
    """Add one or two PII sentences (email, phone, card) to a user text and remember the strings."""
    chosen = [rng.choice(kinds)]
    if len(kinds) > 1 and rng.random() < 0.2:
        chosen.append(rng.choice([k for k in kinds if k != chosen[0]]))
    text = example.text
    for kind in chosen:
        value = make_pii(rng, kind)
        sentence = rng.choice(PII_SENTENCES[kind]).format(v=value)
        if rng.random() < 0.6 or "\n" not in text:
            text = text.rstrip() + (" " if rng.random() < 0.8 else "\n") + sentence
        else:
            head, tail = text.rsplit("\n", 1)
            text = f"{head} {sentence}\n{tail}"
        example.pii.append({"kind": kind, "value": value, "origin": "planted"})
        example.protected.append(value)
    example.text = text
    return example
