"""Typed candidate values for one parameter, read from the conversation text (plain Python, no torch).

The span heads are good at *where* a value is and poor at *how long* it is: free start/end spans cut
"Magnus Carlsen" to "Carlsen" and "01-01-1980" to "01-01". So each parameter gets a small set of
whole candidates that its type allows, and the heads only rank them:
- integer/number: every number written (digits, "5%", number words);
- string: quoted text, runs of capitalized words ("Metropolitan Museum of Art"), tokens with
  inner punctuation (paths, ids, dates), and the heads' own best spans snapped to those;
- array: bracketed literals ("[1, 2]", "(40.7, -74.0)"), lists written out ("A, B and C"),
  "from X to Y" ranges, and for enum items every option the text names;
- enum: the options the text names (matched on word stems).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

from flywheel.train.schematool.data import NUMBER_WORDS, WORD_RE, param_types, readable

# Digits (thousands separators, decimals, a sign) with an optional trailing percent sign.
NUMBER_PERCENT_RE = re.compile(
    r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?%?"
    r"(?:\s+(?:thousand|million|billion|trillion)\b)?",
    re.IGNORECASE,
)
SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
PLAIN_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
# Quoted text; an apostrophe inside a word ("It's") does not close a single quote.
QUOTED_RE = re.compile(r"(?<![\w])(['\"`])((?:[^'\"`\n]|(?<=\w)'(?=\w)){1,200}?)\1(?![\w])")
# A token with inner punctuation: a path, an id, a date, a version ("2022/AL2562", "~/a/b.nii").
SPECIAL_RE = re.compile(
    r"[\w~]+(?:[/\-_.:@#+^]+[\w~]+)+|~?/[\w./\-~]+|\b(?=[a-zA-Z]*\d)(?=\d*[a-zA-Z])[a-zA-Z\d]{3,}\b"
)
# Abbreviations whose period does not end a name ("ABC Ltd.", "Liverpool F.C.").
ABBREVIATIONS = re.compile(r"(?:[A-Z]\.)+|Ltd\.|Inc\.|Co\.|Corp\.|Dr\.|St\.|Mt\.|Mr\.|Mrs\.|Ms\.|Jr\.|Sr\.")
CONNECTORS = {"of", "the", "de", "&", "du", "la", "von", "van", "del", "da", "di"}
WORD_TOKEN_RE = re.compile(r"[A-Za-z0-9][\w'.&\-]*")
BRACKET_RE = re.compile(r"[\[(][^\[\]()]*(?:[\[(][^\[\]()]*[\])][^\[\]()]*)*[\])]")
LIST_WORD = r"\b(?!(?:and|or|from|to|in|on|with|for|of|the|at|by|is|are)\b)[A-Za-z0-9][\w'\-.&]*"
LIST_ITEM = rf"(?:(?:the|a|an) )?{LIST_WORD}(?: {LIST_WORD}){{0,2}}"
ARTICLE_RE = re.compile(r"^(?:the|a|an) ", re.IGNORECASE)
LIST_RE = re.compile(rf"{LIST_ITEM}(?:\s*,\s*{LIST_ITEM})*(?:\s*,)?\s+(?:and|or|&)\s+{LIST_ITEM}")
# "from 2015 to 2021", "between x = -1 and x = 2"
RANGE_RE = re.compile(
    r"\b(?:from|between)\s+(?:\w+\s*=\s*)?(-?[\d.,]*\d)\s+(?:to|and|through|until)\s+(?:\w+\s*=\s*)?(-?[\d.,]*\d)",
    re.IGNORECASE,
)
# Numbers written one after another: "85, 90, 88 and 92", "12.4, 15.6, 11.2".
LIST_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+|st|nd|rd|th)?(?![\w.])"  # "2nd, 3rd and 4th" too
NUMBER_LIST_RE = re.compile(rf"(?<![\w.\-]){LIST_NUMBER}(?:(?:\s*,\s*|\s*,?\s+and\s+){LIST_NUMBER})+")
# Quoted values one after another: "'Age', 'Income' and 'Education'".
QUOTED_LIST_RE = re.compile(
    r"(['\"])[^'\"\n]{1,60}\1(?:(?:\s*,\s*|\s*,?\s+(?:and|or)\s+)(['\"])[^'\"\n]{1,60}\2)+"
)
STOP = {"a", "an", "the", "of", "and", "or", "to", "for", "in", "on", "with", "by", "at", "is", "me"}


@dataclass(frozen=True, slots=True)
class Candidate:
    start: int  # characters of the context
    end: int
    value: Any


def number_candidates(context: str, prop: dict[str, Any]) -> list[Candidate]:
    """Every number written in the context, as the parameter's numeric type. A percentage given
    for a float parameter is a fraction ("5%" -> 0.05), the way rate parameters take it."""
    integer = param_types(prop)[0] == "integer"
    found = []
    lists = [(m.start(), m.end()) for m in BRACKET_RE.finditer(context)]
    matches = list(NUMBER_PERCENT_RE.finditer(context))
    for match in list(matches):
        if "," in match.group() and any(a < match.start() < b for a, b in lists):
            matches.remove(match)  # "[200,300,400]" is three numbers, not 200300400
            matches += PLAIN_NUMBER_RE.finditer(context, match.start(), match.end())
    for match in matches:
        text, *scale = match.group().split()
        try:
            number = float(text.rstrip("%").replace(",", "")) * SCALES.get(
                scale[0].lower() if scale else "", 1
            )
        except ValueError:
            continue
        if text.endswith("%") and not integer:
            number = round(number / 100, 10)
        found.append((match.start(), match.end(), number))
    for match in WORD_RE.finditer(context):
        found.append((match.start(), match.end(), float(NUMBER_WORDS[match.group(1).lower()])))
    out = []
    for start, end, number in sorted(found):
        if integer and number != int(number):
            continue
        out.append(Candidate(start, end, int(number) if integer else number))
    return out


def entity_spans(context: str) -> list[tuple[int, int]]:
    """Quoted text, runs of capitalized words (connectors allowed inside) and special tokens."""
    spans = [(m.start(2), m.end(2)) for m in QUOTED_RE.finditer(context)]
    spans += [trim(context, m.start(), m.end()) for m in SPECIAL_RE.finditer(context)
              if not re.fullmatch(r"-?[\d.,]+", m.group())]  # fmt: skip
    words = [(m.start(), m.end()) for m in WORD_TOKEN_RE.finditer(context)]
    run: list[tuple[int, int]] = []
    for index, (start, end) in enumerate([*words, (len(context), len(context))]):
        word = context[start:end]
        capital = bool(word) and (word[0].isupper() or (word[0].isdigit() and len(run) > 0))
        # "Find the Louvre": a sentence's first word is capitalized for grammar, not as a name
        connector = bool(run) and word.lower() in CONNECTORS and index + 1 < len(words)
        connector = connector and not (len(run) == 1 and _sentence_start(context, run[0][0]))
        gap = context[run[-1][1] : start] if run else " "
        if (capital or connector) and gap.strip() in ("", "-") and "\n" not in gap:
            run.append((start, end))
            if word.endswith(".") and not ABBREVIATIONS.fullmatch(word):
                spans += _close(context, run)
                run = []
            continue
        if run:
            spans += _close(context, run)
        run = [(start, end)] if capital else []
    return sorted({s for s in spans if s[1] > s[0]})


def _sentence_start(context: str, start: int) -> bool:
    before = context[:start].rstrip()
    return not before or before[-1] in ".!?:\n"


def _close(context: str, run: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The run, and where it is ambiguous its readings without the sentence's first word ("Get
    Liverpool F.C.") and cut at an abbreviation ("Liverpool F.C." / "Include John Doe")."""
    while run and context[run[-1][0] : run[-1][1]].lower() in CONNECTORS:
        run = run[:-1]  # a run never ends on "of"/"the"
    if not run:
        return []
    cuts = [i + 1 for i, (a, b) in enumerate(run[:-1]) if ABBREVIATIONS.fullmatch(context[a:b])]
    opening = _sentence_start(context, run[0][0])
    if opening and len(run) == 1:
        return []  # "Find" / "Fetch": a lone capitalized first word is grammar, not a name
    firsts = [0, *cuts] + ([1] if opening else [])
    lasts = [len(run), *cuts]
    return [trim(context, run[f][0], run[n - 1][1]) for f in firsts for n in lasts if n > f]


def trim(context: str, start: int, end: int) -> tuple[int, int]:
    """No trailing sentence punctuation, quote or possessive on a value ("'Ride'." -> "Ride")."""
    while end > start:
        last = context[start:end].split()[-1] if context[start:end].split() else ""
        if context[end - 1] in ",;:?!)'\"`":
            end -= 1
        elif context[max(start, end - 2) : end] == "'s":
            end -= 2
        elif last.endswith(".") and not ABBREVIATIONS.fullmatch(last):
            end -= 1
        else:
            break
    return start, end


def snap(start: int, end: int, entities: list[tuple[int, int]]) -> tuple[int, int]:
    """A span inside an entity grows to the smallest entity that covers it ("Carlsen" -> "Magnus
    Carlsen", "01-01" -> "01-01-1980"); any other span is kept as the heads found it."""
    covering = [(b - a, a, b) for a, b in entities if a <= start and end <= b]
    return min(covering)[1:] if covering else (start, end)


def enum_mentions(context: str, options: list[Any]) -> list[tuple[int, int, Any]]:
    """(start, end, option) for each option whose words the context writes, stems compared (so
    "strength and weakness" names "strengths" and "weaknesses"); the most specific option first."""
    low = context.lower()
    found = []
    for option in options:
        words = [w for w in readable(str(option)).split() if w not in STOP] or readable(str(option)).split()
        hits = [_stem_hit(low, w) for w in words]
        if words and all(h is not None for h in hits):
            found.append((min(h[0] for h in hits), max(h[1] for h in hits), option, len(words)))
    found.sort(key=lambda f: (-f[3], f[1] - f[0]))
    return [(a, b, option) for a, b, option, _ in found]


def _stem_hit(low: str, word: str) -> tuple[int, int] | None:
    stem = word if len(word) <= 4 else word[: max(4, len(word) - 3)]
    match = re.search(rf"\b{re.escape(stem)}\w*", low)
    return (match.start(), match.end()) if match else None


def array_candidates(context: str, prop: dict[str, Any]) -> list[Candidate]:
    items = prop.get("items") if isinstance(prop.get("items"), dict) else {}
    enum = items.get("enum")
    if isinstance(enum, list) and enum:
        named = sorted(enum_mentions(context, enum))
        return [Candidate(named[0][0], named[-1][1], [o for _, _, o in named])] if named else []
    out = [c for m in BRACKET_RE.finditer(context) if (c := _literal(context, m, items)) is not None]
    numeric = param_types(items)[0] in ("integer", "number") if items else False
    for match in RANGE_RE.finditer(context):
        if numeric:
            values = [number_candidates(g, items) for g in match.groups()]
            if all(values):
                # scored from the first number: the heads point at values, not at "from"
                out.append(Candidate(match.start(1), match.end(), [v[0].value for v in values]))
    for match in NUMBER_LIST_RE.finditer(context):
        if numeric:
            values = [c.value for c in number_candidates(match.group(), items)]
            if len(values) > 1:
                out.append(Candidate(match.start(), match.end(), values))
    for match in QUOTED_LIST_RE.finditer(context):
        values = [_item(v, items, numeric) for _, v in QUOTED_RE.findall(match.group())]
        if len(values) > 1 and all(v is not None for v in values):
            inner = match.group().strip("'\"")
            start = match.start() + match.group().index(inner)
            out.append(Candidate(start, start + len(inner), values))
    for match in LIST_RE.finditer(context):
        parts = [p.strip() for p in re.split(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or|&)\s+", match.group())]
        first = parts[0].split()
        # the first item's start is a guess ("I am efficient, calm and kind"): each reading
        for drop in range(len(first)):
            head = " ".join(first[drop:])
            values = [_item(ARTICLE_RE.sub("", p), items, numeric) for p in [head, *parts[1:]] if p]
            if len(values) > 1 and all(v is not None for v in values):
                start = match.start() + match.group().index(head)
                out.append(Candidate(start, match.end(), values))
    return out


def _item(text: str, items: dict[str, Any], numeric: bool) -> Any:
    if not numeric:
        return text
    found = number_candidates(text, items)
    return found[0].value if len(found) == 1 else None


def _literal(context: str, match: re.Match, items: dict[str, Any]) -> Candidate | None:
    text = match.group().replace("(", "[").replace(")", "]")
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        body = text.strip("[]")
        value = [p.strip().strip("'\"") for p in body.split(",") if p.strip()]
        if items and param_types(items)[0] in ("integer", "number"):
            # "(e.g., 12.4, 15.6, 11.2)": the numbers inside
            value = [c.value for c in number_candidates(body, items)]
    if not isinstance(value, list | tuple) or not value:
        return None
    value = _tuples_to_lists(value)
    if items and param_types(items)[0] in ("integer", "number"):
        if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return None
        if param_types(items)[0] == "number":
            value = [float(v) for v in value]
    # scored on the first and last value inside: the heads point at values, not at brackets/quotes
    text = match.group()
    inner = text.strip("[]() '\"")
    start = match.start() + text.index(inner) if inner else match.start()
    return Candidate(start, start + len(inner) if inner else match.end(), value)


def _tuples_to_lists(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return [_tuples_to_lists(v) for v in value]
    return value


def candidate_spans(context: str, prop: dict[str, Any]) -> list[tuple[int, int]]:
    """The spans the filler would rank for this parameter, from the text alone (training: the
    gold value's span is taught to beat these; the heads' own spans join them at inference)."""
    kind = param_types(prop)[0]
    enum = prop.get("enum")
    if isinstance(enum, list) and enum and kind != "array":
        return []  # an option is chosen by meaning, not ranked by the span heads
    if kind in ("integer", "number"):
        found = number_candidates(context, prop)
    elif kind == "array":
        found = array_candidates(context, prop)
    else:
        return entity_spans(context)
    return [(c.start, c.end) for c in found]
