"""Filling a chosen function's parameters: typed candidates (candidates.py) ranked by the span
heads, then one joint assignment for the whole call.

Each candidate's score is the log-probability the parameter's start/end heads give its first and
last token. The assignment maximizes the summed score under two rules no single parameter can see:
two parameters never take the same words, and values written in the order the schema lists their
parameters get a small bonus ("between 4 and 5" -> x=4, y=5). An optional parameter may be left
out at a fixed cost, so it only takes a value the heads clearly point at; a number the call has not
used yet goes to an optional numeric parameter (a number in a request is rarely there for nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flywheel.train.schematool.candidates import (
    Candidate,
    array_candidates,
    entity_spans,
    enum_mentions,
    number_candidates,
    snap,
    trim,
)
from flywheel.train.schematool.data import ABSENT, FALSE, SPAN, TRUE, Function, coerce_value, param_types

ORDER_BONUS = 1.0  # log-probability units per pair of values in the schema's order
STRUCTURE_BONUS = 4.0  # a whole name, quote, id or written-out list over a loose span
OPTIONAL_MIN_P = 0.5  # the mode head's "present" probability an optional value needs
OPTIONAL_MIN_SCORE = -4.0  # the least score an optional parameter's value may have
OMIT_COST = 4.0  # an optional parameter left out scores this far below its best candidate
TOP_K = 12  # candidates per parameter in the joint search
MAX_LEAVES = 20000  # the joint search's size before it falls back to fewer candidates each


# An id or date token: a number inside it ("2022/AL2562", "rs6034464", "2x2") is no leftover.
ID_RE = re.compile(r"[A-Za-z]\d|\d[/\-:x]\d|[/\-]")


@dataclass(frozen=True, slots=True)
class Scored:
    candidate: Candidate | None  # None: left out
    score: float
    spans: bool  # takes words of the context (an enum option chosen by meaning does not)


class SpanScorer:
    """Log-probabilities of character spans under one parameter row's start/end heads."""

    def __init__(self, start: Any, end: Any, offsets: list, context_mask: list[int]) -> None:
        self.start = start.float().clamp(min=-1e4).log_softmax(-1).tolist()
        self.end = end.float().clamp(min=-1e4).log_softmax(-1).tolist()
        self.tokens = [(i, s, e) for i, ((s, e), m) in enumerate(zip(offsets, context_mask, strict=True))
                       if m and e > s]  # fmt: skip

    def __call__(self, a: int, b: int) -> float | None:
        inside = [i for i, s, e in self.tokens if s < b and e > a]
        return self.start[inside[0]] + self.end[inside[-1]] if inside else None


def decide_mode(probs: Any, prop: dict[str, Any], required: bool) -> int:
    """The parameter's answer mode: booleans are true/false, a required one is never absent, an
    optional one is filled only when the mode head is sure (a wrong optional value fails the call,
    a left-out one takes the function's default)."""
    if param_types(prop) != ["boolean"]:
        return SPAN if required or float(probs[SPAN]) > OPTIONAL_MIN_P else ABSENT
    allowed = [TRUE, FALSE] if required else [ABSENT, TRUE, FALSE]
    return max(allowed, key=lambda m: float(probs[m]))


def fill_arguments(
    function: Function, context: str, rows: list[tuple[SpanScorer, Any, list]]
) -> tuple[dict[str, Any], float]:
    """(arguments, least sure mode decision); `rows` holds each parameter's (scorer, mode
    probabilities, the heads' own best (start, end) character spans), in schema order."""
    names = list(function.properties)
    arguments: dict[str, Any] = {}
    sure, slots, idle = 1.0, [], []
    entities = entity_spans(context)
    for name, (scorer, probs, top) in zip(names, rows, strict=True):
        prop, required = function.properties[name], name in function.required
        choice = decide_mode(probs, prop, required)
        sure = min(sure, float(probs[choice]))
        if choice in (TRUE, FALSE):
            arguments[name] = choice == TRUE
            continue
        found = candidates(context, prop, scorer, top, entities)
        if not required:
            found = [s for s in found if s.score >= OPTIONAL_MIN_SCORE]
        if choice == SPAN and found:
            slots.append((name, required, found))
        elif choice == ABSENT and param_types(prop)[0] in ("integer", "number"):
            idle.append((name, found))
    chosen = joint_assignment(slots)
    arguments |= {name: s.candidate.value for name, s in chosen.items() if s.candidate is not None}
    taken = [(s.candidate.start, s.candidate.end) for s in chosen.values() if s.candidate and s.spans]
    arguments |= leftover_numbers(idle, taken, entities, context)
    return {n: arguments[n] for n in names if n in arguments}, sure


def candidates(
    context: str, prop: dict[str, Any], scorer: SpanScorer, top: list[tuple[int, int]], entities: list
) -> list[Scored]:
    """The parameter's candidate values, best first, at most TOP_K."""
    kind = param_types(prop)[0]
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and kind != "array":
        named = enum_mentions(context, enum)
        if named:  # the most specific option the text names; chosen by meaning, takes no words
            return [Scored(Candidate(named[0][0], named[0][1], named[0][2]), 0.0, False)]
        found = [Candidate(a, b, coerce_value(context[a:b], prop)) for a, b in top[:1]]
        return [Scored(c, 0.0, False) for c in found]
    if kind in ("integer", "number"):
        found, structured = number_candidates(context, prop), []
    elif kind == "array":
        structured = array_candidates(context, prop)
        found = structured + [
            Candidate(a, b, v) for a, b in top[:3] if (v := coerce_value(context[a:b], prop))
        ]
    elif kind == "string":
        structured = [Candidate(a, b, context[a:b].strip()) for a, b in entities if context[a:b].strip()]
        spans = {snap(*trim(context, a, b), entities) for a, b in top} - set(entities)
        found = structured + [Candidate(a, b, context[a:b].strip()) for a, b in spans if context[a:b].strip()]
    else:
        found, structured = [Candidate(a, b, coerce_value(context[a:b], prop)) for a, b in top[:1]], []
        found = [c for c in found if c.value is not None]
    bonus = {(c.start, c.end) for c in structured}
    scored = [
        Scored(c, s + STRUCTURE_BONUS * ((c.start, c.end) in bonus), True)
        for c in found
        if (s := scorer(c.start, c.end)) is not None
    ]
    best: dict[tuple[int, int], Scored] = {}
    for s in scored:  # one candidate per span: the same words read two ways keep the first reading
        best.setdefault((s.candidate.start, s.candidate.end), s)
    return sorted(best.values(), key=lambda s: -s.score)[:TOP_K]


def joint_assignment(slots: list[tuple[str, bool, list[Scored]]]) -> dict[str, Scored]:
    """The best-scoring choice of one candidate per slot (or none, for an optional one) with no
    two slots on overlapping words; exhaustive over the top few candidates of each."""
    options = []
    for _, required, found in slots:
        choices = list(found)
        if not required:
            choices.append(Scored(None, found[0].score - OMIT_COST, False))
        else:  # last resort: a required value shares words rather than leave the call invalid
            choices.append(Scored(found[0].candidate, found[0].score - 100 * OMIT_COST, False))
        options.append(choices)
    k = TOP_K + 1
    while k > 1 and _leaves(options, k) > MAX_LEAVES:
        k -= 1
    options = [o if len(o) <= k else [*o[: k - 1], o[-1]] for o in options]
    best: tuple[float, list[Scored]] = (float("-inf"), [])

    def search(index: int, picked: list[Scored], total: float) -> None:
        nonlocal best
        if index == len(options):
            if total > best[0]:
                best = (total, list(picked))
            return
        for choice in options[index]:
            if choice.spans and any(_overlap(choice, p) for p in picked):
                continue
            gain = choice.score + ORDER_BONUS * sum(_in_order(p, choice) for p in picked)
            search(index + 1, [*picked, choice], total + gain)

    search(0, [], 0.0)
    return {name: choice for (name, _, _), choice in zip(slots, best[1], strict=False)}


def _leaves(options: list[list[Scored]], k: int) -> int:
    count = 1
    for o in options:
        count *= min(len(o), k)
    return count


def _overlap(a: Scored, b: Scored) -> bool:
    if not (a.spans and b.spans and a.candidate and b.candidate):
        return False
    return a.candidate.start < b.candidate.end and b.candidate.start < a.candidate.end


def _in_order(earlier: Scored, later: Scored) -> bool:
    """Both values copied from the text, of the same kind, written in schema order."""
    if not (earlier.spans and later.spans and earlier.candidate and later.candidate):
        return False
    same_kind = type(earlier.candidate.value) is type(later.candidate.value)
    return same_kind and earlier.candidate.start < later.candidate.start


def leftover_numbers(
    idle: list[tuple[str, list[Scored]]], taken: list[tuple[int, int]], entities: list, context: str
) -> dict[str, Any]:
    """Numbers no parameter took, each to the optional numeric parameter whose heads score it
    best; a number inside an id or date ("2022/AL2562") is part of that value, not a leftover."""
    blocked = taken + [(a, b) for a, b in entities if ID_RE.search(context[a:b])]
    pairs = []
    for name, found in idle:
        for s in found:
            c = s.candidate
            digits = c is not None and any(ch.isdigit() for ch in context[c.start : c.end])
            if digits and not any(c.start < b and a < c.end for a, b in blocked):
                pairs.append((s.score, name, c))
    values: dict[str, Any] = {}
    used: list[tuple[int, int]] = []
    for _, name, c in sorted(pairs, key=lambda p: -p[0]):
        if name not in values and not any(c.start < b and a < c.end for a, b in used):
            values[name] = c.value
            used.append((c.start, c.end))
    return values
