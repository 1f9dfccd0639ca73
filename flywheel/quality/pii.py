"""PII scrubbing: emails, phone numbers, payment cards (Luhn), IBANs (mod 97), national IDs, IPs.

Every match becomes a typed placeholder numbered per distinct value (`<EMAIL_1>`, `<PHONE_2>`). One
`Scrubber` serves one record, so the same value gets the same placeholder in the user message, the
answer and tool-call arguments: a student trained on scrubbed extraction data learns to copy the
placeholder, and the serving path can map it back. Matching is span-based: all patterns are searched
on the original text and overlaps go to the higher-priority type (cards before phones, because a card
number also looks like a long phone number).

Precision matters as much as recall (chat traffic is full of code, logs and config): inside code
(``` / ~~~ fenced blocks and inline `code`) only the strongly validated types (email, card with Luhn,
IBAN with mod 97) are scrubbed; loopback/unspecified/reserved IPs, dates, times, timestamps and numeric
ranges (Redis slots `0-5460`) are not personal and are left intact.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flywheel.config.curation import PII_TYPES


@dataclass(frozen=True, slots=True)
class PiiPattern:
    """One PII type: a candidate regex (group `value` narrows the span) and an optional validator."""

    type: str
    regex: re.Pattern[str]
    validate: Callable[[str], bool] | None = None
    hint: re.Pattern[str] | None = None  # found in every text the regex can match (a cheap pre-check)

    @property
    def placeholder_type(self) -> str:
        return self.type.upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


CARD_FIRST_DIGITS = "23456"  # issuer ranges (Mastercard 2-series, Amex/Diners/JCB, Visa, MC, Discover)


def _card_ok(text: str) -> bool:
    """Luhn, a real issuer's first digit, and not a compact timestamp (epoch ms, YYYYMMDDhhmmss)."""
    digits = re.sub(r"\D", "", text)
    if not (13 <= len(digits) <= 19 and len(set(digits)) > 1 and luhn_ok(digits)):
        return False
    return digits[0] in CARD_FIRST_DIGITS and not COMPACT_TIMESTAMP.match(digits)


def _iban_ok(text: str) -> bool:
    compact = re.sub(r"\s", "", text).upper()
    if not 15 <= len(compact) <= 34:
        return False
    rotated = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rotated)
    return int(number) % 97 == 1


ISO_DATE_START = re.compile(r"^(?:19|20)\d\d[-./ ](?:0?[1-9]|1[0-2])\b")
COMPACT_TIMESTAMP = re.compile(r"^(?:19|20)\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])(?:[01]\d|2[0-3])?")
_DAY, _MONTH, _YEAR = r"(?:0?[1-9]|[12]\d|3[01])", r"(?:0?[1-9]|1[0-2])", r"(?:19|20)\d\d"
DATE_IN_TEXT = re.compile(
    rf"(?<!\d)(?:{_YEAR}([-./ ]){_MONTH}\1{_DAY}|{_DAY}([-./ ]){_MONTH}\2{_YEAR}"
    rf"|{_MONTH}([-./ ]){_DAY}\3{_YEAR})(?!\d)"
)
RANGE_PARTS = re.compile(r"^(\d+)\s*[-\u2013]\s*(\d+)$")


def _phone_ok(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    if text.startswith("+"):
        return 8 <= len(digits) <= 15
    if not 9 <= len(digits) <= 15 or ISO_DATE_START.match(text) or DATE_IN_TEXT.search(text):
        return False
    return not _numeric_range(text)


def _numeric_range(text: str) -> bool:
    """`5461-10922`: two numbers of similar length, ascending (a slot/port/page range, not a phone)."""
    match = RANGE_PARTS.match(text.strip())
    if match is None:
        return False
    low, high = match.groups()
    return abs(len(low) - len(high)) <= 1 and int(low) < int(high)


def _ip_ok(text: str) -> bool:
    """A routable-looking address: loopback, unspecified, link-local, multicast, reserved are not PII."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    special = (
        address.is_loopback or address.is_unspecified or address.is_multicast or address.is_reserved
        or address.is_link_local
    )  # fmt: skip
    return not special


_BUILTIN: dict[str, list[tuple[str, Callable[[str], bool] | None]]] = {
    "email": [(r"(?<![\w.%+-])[\w.%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])", None)],
    "iban": [(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b", _iban_ok)],
    "card": [(r"(?<![\w+.-])\d(?:[ -]?\d){12,18}(?![\w-])", _card_ok)],
    "national_id": [
        # US SSN shape, UK National Insurance number, and any number right after an ID keyword.
        (r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])", None),
        (r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b", None),
        (
            r"(?i)\b(?:ssn|social security(?: number| no\.?)?|passport(?: number| no\.?)?|"
            r"national id(?: number)?|id card(?: number)?|tax id|personal id)\s*(?:is|:|#)?\s*"
            r"(?P<value>[A-Z0-9](?:[A-Z0-9 -]{4,16}[A-Z0-9]))",
            lambda value: sum(c.isdigit() for c in value) >= 5,
        ),
    ],
    "ip": [
        (r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d)", _ip_ok),
        (r"(?i)(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", _ip_ok),
    ],
    "phone": [
        (
            r"(?<![\w+:.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,6}){1,4}"
            r"(?![\w]|[-:.]\d)",
            _phone_ok,
        ),
        (r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?\(\d{1,4}\)[ .-]?\d{2,4}(?:[ .-]?\d{2,4}){0,3}(?![\w])", _phone_ok),
        (r"(?<![\w+])\+\d{8,15}(?![\w])", _phone_ok),
    ],
}
# What a text must contain for a built-in pattern to match (or to pass its check): a digit, except an
# email's "@" and an IPv6 address's colons. Most chat text has none of them, and one scan for the hint
# costs a small part of running the pattern's regex.
_DIGIT = re.compile(r"\d")
_HINTS = {_BUILTIN["email"][0][0]: re.compile("@"), _BUILTIN["ip"][1][0]: re.compile(":")}
# Overlapping matches go to the type listed first.
PRIORITY = ("email", "iban", "card", "national_id", "ip", "phone")
# Scrubbed inside code too: checksummed or unambiguous. Phones, IPs and IDs in code are mostly not PII.
CODE_SAFE_TYPES = frozenset({"email", "card", "iban"})
CODE_SPAN_RE = re.compile(r"(?ms)^[ \t]*(```|~~~).*?(?:^[ \t]*\1[ \t]*$|\Z)|`[^`\n]+`")


def build_patterns(
    types: Iterable[str] = PII_TYPES, custom: Mapping[str, str] | None = None
) -> tuple[PiiPattern, ...]:
    """Built-in patterns for `types` (in priority order), then the custom type -> regex patterns."""
    wanted = set(types)
    unknown = wanted - set(PII_TYPES)
    if unknown:
        raise ValueError(f"unknown PII types {sorted(unknown)} (known: {', '.join(PII_TYPES)})")
    patterns = [
        PiiPattern(name, re.compile(regex), check, _HINTS.get(regex, _DIGIT))
        for name in PRIORITY
        if name in wanted
        for regex, check in _BUILTIN[name]
    ]
    for name, regex in (custom or {}).items():
        patterns.append(PiiPattern(name, re.compile(regex)))
    return tuple(patterns)


DEFAULT_PATTERNS = build_patterns()
PLACEHOLDER_RE = re.compile(r"<[A-Z][A-Z0-9_]*_\d+>")


@dataclass
class Scrubber:
    """Scrubs the texts of one record with placeholders that stay consistent across its texts."""

    patterns: tuple[PiiPattern, ...] = DEFAULT_PATTERNS
    placeholders: dict[tuple[str, str], str] = field(default_factory=dict)
    originals: dict[str, str] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)

    def __call__(self, text: str) -> str:
        if not text:
            return text
        spans = self._spans(text)
        if not spans:
            return text
        out, cursor = [], 0
        for start, end, pattern in spans:
            out.append(text[cursor:start])
            out.append(self._placeholder(pattern, text[start:end]))
            cursor = end
        out.append(text[cursor:])
        return "".join(out)

    def _spans(self, text: str) -> list[tuple[int, int, PiiPattern]]:
        taken: list[tuple[int, int, PiiPattern]] = [
            (m.start(), m.end(), _KEEP) for m in PLACEHOLDER_RE.finditer(text)
        ]
        code = code_spans(text) if "`" in text or "~~~" in text else []
        hinted: dict[re.Pattern[str], bool] = {}
        for pattern in self.patterns:
            if pattern.hint is not None:
                found = hinted.get(pattern.hint)
                if found is None:
                    found = hinted[pattern.hint] = pattern.hint.search(text) is not None
                if not found:
                    continue
            for match in pattern.regex.finditer(text):
                group = "value" if "value" in pattern.regex.groupindex else 0
                start, end = match.span(group)
                value = text[start:end]
                if start == end or (pattern.validate and not pattern.validate(value)):
                    continue
                if pattern.type not in CODE_SAFE_TYPES and _overlaps(start, end, code):
                    continue
                if all(end <= s or start >= e for s, e, _ in taken):
                    taken.append((start, end, pattern))
        return sorted((s for s in taken if s[2] is not _KEEP), key=lambda span: span[0])

    def _placeholder(self, pattern: PiiPattern, value: str) -> str:
        key = (pattern.type, _normalized(pattern.type, value))
        if key not in self.placeholders:
            self.counts[pattern.type] += 1
            placeholder = f"<{pattern.placeholder_type}_{self.counts[pattern.type]}>"
            self.placeholders[key] = placeholder
            self.originals[placeholder] = value
        return self.placeholders[key]


_KEEP = PiiPattern("_placeholder", PLACEHOLDER_RE)


def code_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of fenced code blocks (an unclosed fence runs to the end) and inline `code`."""
    return [match.span() for match in CODE_SPAN_RE.finditer(text)]


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < e and end > s for s, e in spans)


def _normalized(kind: str, value: str) -> str:
    """The same person typing the same value twice: emails ignore case, numbers ignore separators."""
    if kind == "email":
        return value.lower()
    if kind in ("phone", "card", "iban", "national_id"):
        return re.sub(r"[^0-9A-Za-z+]", "", value).upper()
    return value


def scrub(text: str, patterns: tuple[PiiPattern, ...] = DEFAULT_PATTERNS) -> tuple[str, Counter[str]]:
    """`text` with PII replaced by typed placeholders, and the count of distinct values per type."""
    scrubber = Scrubber(patterns)
    return scrubber(text), scrubber.counts


@dataclass(slots=True)
class ScrubbedRecord:
    """Scrubbed messages and answer; `originals` maps each placeholder back to the value it hides."""

    messages: list[dict[str, Any]]
    target: dict[str, Any] | None
    counts: Counter[str]
    originals: dict[str, str]


def scrub_record(
    messages: list[dict[str, Any]],
    target: dict[str, Any] | None = None,
    patterns: tuple[PiiPattern, ...] = DEFAULT_PATTERNS,
) -> ScrubbedRecord:
    """Scrub every text of one record (messages, then the answer) with one consistent numbering."""
    scrubber = Scrubber(patterns)
    scrubbed = [scrub_message(message, scrubber) for message in messages]
    answer = scrub_message(target, scrubber) if target is not None else None
    return ScrubbedRecord(scrubbed, answer, scrubber.counts, scrubber.originals)


def restore(text: str, originals: dict[str, str]) -> str:
    """Put the original values back into a text that uses the record's placeholders (serving path)."""
    return PLACEHOLDER_RE.sub(lambda m: originals.get(m.group(0), m.group(0)), text)


def scrub_message(message: dict[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """A copy of a chat message with its content, refusal and tool-call arguments scrubbed."""
    out = dict(message)
    content = message.get("content")
    if isinstance(content, str):
        out["content"] = scrubber(content)
    elif isinstance(content, list):
        out["content"] = [_scrub_part(part, scrubber) for part in content]
    if isinstance(message.get("refusal"), str):
        out["refusal"] = scrubber(message["refusal"])
    if message.get("tool_calls"):
        out["tool_calls"] = [_scrub_call(call, scrubber) for call in message["tool_calls"]]
    return out


def _scrub_part(part: Any, scrubber: Scrubber) -> Any:
    if isinstance(part, dict) and isinstance(part.get("text"), str):
        return {**part, "text": scrubber(part["text"])}
    return part


def _scrub_call(call: Any, scrubber: Scrubber) -> Any:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("arguments"), str):
        return call
    return {**call, "function": {**function, "arguments": scrubber(function["arguments"])}}
