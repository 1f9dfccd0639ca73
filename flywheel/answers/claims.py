"""Which calls a student may answer at all, the one rule evaluation's cascade and `flywheel serve` share.

A student that cannot write free text (the encoder-extractor: it copies values and picks choices, its
"text" is a canned reply it saw twice; the schema-tool student: it chooses a function or "reply in
text" but writes no text) claims only tool-call turns of a tool_call workload: when it
answers in text, the turn goes to the teacher. Every other student claims every turn. The cascade
(flywheel/evaluate/cascade.py) calibrates with this rule and the champions manifest carries it, so
serve routes exactly what was calibrated.

A student class declares its own rule with a `claims` attribute ("tool_calls" or "all"); otherwise
its manifest `kind` decides (TOOL_ONLY_KINDS).
"""

from __future__ import annotations

from typing import Any

ALL, TOOL_CALLS = "all", "tool_calls"
CLAIMS = (ALL, TOOL_CALLS)
TOOL_ONLY_KINDS = frozenset({"encoder-extractor", "schema-tool"})


def claims_for(task: str, kind: str | None, declared: str | None = None) -> str:
    """The claim rule of a student of `kind` (or its declared `claims`) on a `task` workload."""
    if task != "tool_call":
        return ALL  # "text turns" exist only where the alternative is a tool call
    if declared in CLAIMS:
        return str(declared)
    return TOOL_CALLS if kind in TOOL_ONLY_KINDS else ALL


def claims_of(predictor: Any, task: str) -> str:
    """The claim rule of a loaded predictor: its own `claims`, else its manifest's kind."""
    declared = getattr(predictor, "claims", None)
    manifest = getattr(predictor, "manifest", None)
    kind = manifest.get("kind") if isinstance(manifest, dict) else getattr(predictor, "kind", None)
    return claims_for(
        task, kind if isinstance(kind, str) else None, declared if isinstance(declared, str) else None
    )


def claimed(message: dict[str, Any] | None, claims: str) -> bool:
    """May a student with rule `claims` answer with `message`? (tool_calls: only a tool call.)"""
    if claims == TOOL_CALLS:
        return bool((message or {}).get("tool_calls"))
    return True
