"""Prompt pruning: find the static part every request of a workload repeats, keep the variable part.

Production prompts carry a long system prompt and a few-shot block that never change; a student
specialised on the workload does not need them. The template is the longest run of leading messages
shared by most requests (`min_template_coverage`), plus the common start of the next message's text
(a "Classify this ticket:" preamble). `apply_template` removes exactly that prefix from a request, and
leaves any request that does not start with it untouched, so the serving path can call it blindly.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson

from flywheel.records import canonical_dumps, message_text, utcnow

MIN_TEXT_PREFIX_CHARS = 40


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """The static prefix of a workload's prompts: leading messages and the start of the next text."""

    workload_id: str
    template_id: str
    messages: tuple[dict[str, Any], ...]
    text_prefix: str | None
    n_static_tokens: int

    @property
    def static_prefix(self) -> dict[str, Any]:
        return {"messages": list(self.messages), "text_prefix": self.text_prefix}


def estimate_tokens(text: str) -> int:
    """Rough token count (~4 characters per token), the same rule for every stage's before/after."""
    return math.ceil(len(text) / 4) if text else 0


def message_tokens(messages: list[dict[str, Any]]) -> int:
    """Estimated prompt tokens of chat messages, including ~4 tokens of framing per message."""
    return sum(4 + estimate_tokens(message_text(m)) for m in messages)


def find_template(
    workload_id: str,
    conversations: list[list[dict[str, Any]]],
    *,
    min_coverage: float = 0.6,
    min_static_tokens: int = 16,
) -> PromptTemplate | None:
    """The static prefix shared by at least `min_coverage` of the conversations, or None."""
    if not conversations:
        return None
    needed = max(1, math.ceil(min_coverage * len(conversations)))
    members = list(range(len(conversations)))
    prefix: list[dict[str, Any]] = []
    dumps: dict[int, bytes] = {}  # by object: one serialization per shared (interned) message object

    def key_of(message: dict[str, Any]) -> bytes:
        found = dumps.get(id(message))
        return found if found is not None else dumps.setdefault(id(message), canonical_dumps(message))

    while True:
        depth = len(prefix)
        keys = [key_of(conversations[i][depth]) for i in members if len(conversations[i]) > depth + 1]
        if not keys:
            break
        key, count = Counter(keys).most_common(1)[0]
        if count < needed:
            break
        members = [
            i for i in members if len(conversations[i]) > depth + 1 and key_of(conversations[i][depth]) == key
        ]
        prefix.append(orjson.loads(key))
    text_prefix = _common_text_start([conversations[i][len(prefix)] for i in members], needed)
    n_static = message_tokens(prefix) + estimate_tokens(text_prefix or "")
    if n_static < min_static_tokens:
        return None
    static = {"messages": prefix, "text_prefix": text_prefix}
    template_id = "tpl-" + hashlib.sha256(canonical_dumps(static)).hexdigest()[:12]
    return PromptTemplate(workload_id, template_id, tuple(prefix), text_prefix, n_static)


def _common_text_start(messages: list[dict[str, Any]], needed: int) -> str | None:
    """The longest text start (ending at whitespace) shared by at least `needed` of the messages."""
    texts = [m.get("content") for m in messages if isinstance(m.get("content"), str)]
    if len(texts) < needed:
        return None
    head, count = Counter(t[:MIN_TEXT_PREFIX_CHARS] for t in texts).most_common(1)[0]
    if count < needed or len(head) < MIN_TEXT_PREFIX_CHARS:
        return None
    sharing = sorted(t for t in texts if t.startswith(head))
    first, last = sharing[0], sharing[-1]
    length = next((i for i, (a, b) in enumerate(zip(first, last, strict=False)) if a != b), len(first))
    common = first[:length]
    # End at a word boundary so a shared first letter of the variable part is not cut off.
    cut = max(common.rfind(" "), common.rfind("\n"), common.rfind("\t")) + 1
    return common[:cut] if cut >= MIN_TEXT_PREFIX_CHARS else None


def apply_template(
    messages: list[dict[str, Any]], template: PromptTemplate | dict[str, Any] | None
) -> list[dict[str, Any]]:
    """`messages` without the template's static prefix; unchanged when they do not start with it."""
    if template is None:
        return list(messages)
    static = template.static_prefix if isinstance(template, PromptTemplate) else template
    fixed = static.get("messages") or []
    if len(messages) <= len(fixed) or not all(
        _same_message(m, t) for m, t in zip(messages, fixed, strict=False)
    ):
        return list(messages)
    rest = [dict(m) for m in messages[len(fixed) :]]
    text_prefix = static.get("text_prefix")
    content = rest[0].get("content")
    remainder = content[len(text_prefix) :] if text_prefix and isinstance(content, str) else ""
    if text_prefix and isinstance(content, str) and content.startswith(text_prefix) and remainder.strip():
        rest[0]["content"] = remainder
    return rest


def _same_message(message: dict[str, Any], static: dict[str, Any]) -> bool:
    keys = ("role", "content", "tool_calls", "name")
    return all(message.get(key) == static.get(key) for key in keys)


def save_template(con: duckdb.DuckDBPyConnection, template: PromptTemplate) -> None:
    """Record the template (or mark a known one as the latest): one row per (workload, template)."""
    # The row count, not RETURNING: DuckLake (the shared warehouse) has no RETURNING on UPDATE.
    updated = con.execute(
        "UPDATE prompt_templates SET created_at = ? WHERE workload_id = ? AND template_id = ?",
        [utcnow(), template.workload_id, template.template_id],
    ).fetchone()
    if not updated or not updated[0]:
        con.execute(
            "INSERT INTO prompt_templates VALUES (?, ?, ?, ?, ?)",
            [
                template.workload_id,
                template.template_id,
                canonical_dumps(template.static_prefix).decode(),
                template.n_static_tokens,
                utcnow(),
            ],
        )


def load_template(
    warehouse_or_con: Any, workload_id: str, template_id: str | None = None
) -> PromptTemplate | None:
    """The workload's latest template (or the one named), from a Warehouse or a DuckDB connection."""

    def query(con: duckdb.DuckDBPyConnection) -> PromptTemplate | None:
        sql = "SELECT template_id, static_prefix, n_static_tokens FROM prompt_templates WHERE workload_id = ?"
        params: list[Any] = [workload_id]
        if template_id is not None:
            sql += " AND template_id = ?"
            params.append(template_id)
        row = next(iter(con.execute(sql + " ORDER BY created_at DESC LIMIT 1", params).fetchall()), None)
        if row is None:
            return None
        static = orjson.loads(row[1])
        return PromptTemplate(
            workload_id, row[0], tuple(static["messages"]), static.get("text_prefix"), int(row[2])
        )

    if isinstance(warehouse_or_con, duckdb.DuckDBPyConnection):
        return query(warehouse_or_con)
    try:
        return warehouse_or_con.read(query)
    except (FileNotFoundError, duckdb.CatalogException):
        return None
