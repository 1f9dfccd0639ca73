"""Text realism: rendering templates with per-customer writing styles, typos and near-duplicate edits.

Templates are strings with `{slot}` placeholders. Noise (typos, lower case, dropped apostrophes) only
touches the template text, never slot values, so ids, names, emails and other values the answer refers
to stay verbatim in the message.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

SLOT_RE = re.compile(r"(\{\w+\})")
WORD_RE = re.compile(r"\b[A-Za-z]{4,}\b")
NEIGHBORS = {
    "a": "qs",
    "e": "wr",
    "i": "uo",
    "o": "ip",
    "u": "yi",
    "s": "ad",
    "t": "ry",
    "n": "bm",
    "r": "et",
    "l": "k",
    "c": "xv",
    "d": "sf",
    "m": "n",
    "h": "gj",
    "g": "fh",
    "p": "o",
    "y": "tu",
    "k": "jl",
}
CASUAL = (
    ("please", "pls"),
    ("you", "u"),
    ("thanks", "thx"),
    ("because", "bc"),
    ("your", "ur"),
    ("tomorrow", "tmrw"),
    ("I am", "im"),
    ("Thanks", "thx"),
)


@dataclass(frozen=True)
class Style:
    typo_rate: float = 0.0
    lower: bool = False
    no_apostrophes: bool = False
    casual: bool = False
    drop_final_period: bool = False


def pick_style(rng: random.Random) -> Style:
    roll = rng.random()
    if roll < 0.5:
        return Style()
    if roll < 0.85:
        return Style(typo_rate=0.03, no_apostrophes=rng.random() < 0.3, drop_final_period=rng.random() < 0.4)
    return Style(
        typo_rate=0.07, lower=True, no_apostrophes=True, casual=rng.random() < 0.6, drop_final_period=True
    )


def typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == 1:
        return word[:i] + word[i + 1 :]
    if op == 2:
        return word[:i] + word[i] + word[i:]
    near = NEIGHBORS.get(word[i].lower())
    return word[:i] + rng.choice(near) + word[i + 1 :] if near else word[:i] + word[i + 1 :]


def noisy(rng: random.Random, text: str, style: Style) -> str:
    if style.casual:
        for formal, short in CASUAL:
            if rng.random() < 0.7:
                text = re.sub(rf"\b{formal}\b", short, text)
    if style.no_apostrophes:
        text = re.sub(r"(\w)'(\w)", r"\1\2", text)
    if style.lower:
        text = text.lower()
    if style.typo_rate:
        text = WORD_RE.sub(
            lambda m: typo(rng, m.group()) if rng.random() < style.typo_rate else m.group(), text
        )
    return text


def render(rng: random.Random, template: str, values: dict[str, str], style: Style) -> str:
    """Fill `{slot}`s with values, applying the style's noise to the template text only."""
    out = []
    for part in SLOT_RE.split(template):
        if len(part) > 2 and part[0] == "{" and part[-1] == "}":
            out.append(str(values[part[1:-1]]))
        elif part:
            out.append(noisy(rng, part, style))
    text = "".join(out).strip()
    if style.drop_final_period and text.endswith(".") and not template.rstrip().endswith("}"):
        text = text[:-1]
    return text


def compose(rng: random.Random, parts: list[str], sep_choices: tuple[str, ...] = (" ",)) -> str:
    """Join sentence templates (skipping empty ones) with one separator chosen per message."""
    sep = rng.choice(sep_choices)
    return sep.join(p for p in parts if p)


# ------------------------------------------------------------------------------ near-duplicate edits

SYNONYMS = (
    ("Hi", "Hello"),
    ("Hello", "Hi"),
    ("thanks", "thank you"),
    ("Thanks", "Thank you"),
    ("please", "pls"),
    ("order", "purchase"),
    ("can't", "cannot"),
    ("cannot", "can't"),
    ("I'm", "I am"),
    ("help", "assist"),
    ("asap", "ASAP"),
    ("received", "gotten"),
    ("want", "would like"),
    ("again", "once more"),
    ("still", "yet"),
    ("just", "only"),
    ("get", "receive"),
    ("issue", "problem"),
    ("problem", "issue"),
)
FILLERS = ("just", "really", "please", "actually", "still")


def _whitespace(rng: random.Random, text: str) -> str:
    spaces = [m.start() for m in re.finditer(" ", text)]
    op = rng.randrange(4)
    if op == 0 and spaces:
        i = rng.choice(spaces)
        return text[:i] + "  " + text[i + 1 :]
    if op == 1:
        return text + rng.choice((" ", "\n", "  "))
    if op == 2 and ". " in text:
        i = rng.choice([m.start() for m in re.finditer(r"\. ", text)])
        return text[: i + 1] + "\n" + text[i + 2 :]
    return rng.choice((" ", "\n")) + text


def _punctuation(rng: random.Random, text: str) -> str:
    stripped = text.rstrip()
    op = rng.randrange(4)
    if op == 0 and stripped and stripped[-1] in ".!?":
        return stripped[:-1]
    if op == 1 and stripped.endswith("?"):
        return stripped + "??"
    if op == 2 and "," in text:
        i = rng.choice([m.start() for m in re.finditer(",", text)])
        return text[:i] + text[i + 1 :]
    return stripped + ("!" if stripped.endswith("!") else ".") if stripped[-1:].isalnum() else stripped + "!"


def _word(rng: random.Random, text: str) -> str:
    present = [(a, b) for a, b in SYNONYMS if re.search(rf"\b{re.escape(a)}\b", text)]
    if present and rng.random() < 0.6:
        a, b = rng.choice(present)
        return re.sub(rf"\b{re.escape(a)}\b", b, text, count=1)
    fillers = [f for f in FILLERS if re.search(rf"\b{f} ", text)]
    if fillers and rng.random() < 0.5:
        return re.sub(rf"\b{rng.choice(fillers)} ", "", text, count=1)
    words = [m.start() for m in re.finditer(r"(?<= )[a-z]{3,}\b", text)]
    if not words:
        return text
    i = rng.choice(words)
    return text[:i] + rng.choice(FILLERS) + " " + text[i:]


def _case(rng: random.Random, text: str) -> str:
    op = rng.randrange(3)
    if op == 0 and text[:1].isupper():
        return text[0].lower() + text[1:]
    if op == 1 and text[:1].islower():
        return text[0].upper() + text[1:]
    return text.lower()


def _typo(rng: random.Random, text: str) -> str:
    words = list(WORD_RE.finditer(text))
    if not words:
        return text
    m = rng.choice(words)
    return text[: m.start()] + typo(rng, m.group()) + text[m.end() :]


EDITS = {"whitespace": _whitespace, "punctuation": _punctuation, "word": _word, "case": _case, "typo": _typo}


def near_duplicate(rng: random.Random, text: str, protected: list[str]) -> tuple[str, list[str]]:
    """A lightly edited copy of `text` (1-2 edits) that keeps every protected string verbatim."""
    names = list(EDITS)
    for _ in range(20):
        ops = rng.sample(names, rng.choice((1, 1, 2)))
        edited = text
        for op in ops:
            edited = EDITS[op](rng, edited)
        if edited != text and all(value in edited for value in protected):
            return edited, ops
    return text + "  ", ["whitespace"]
