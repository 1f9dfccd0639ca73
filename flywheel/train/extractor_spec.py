"""What an encoder-extractor student predicts, and how its predictions become the teacher's JSON again.

The teacher's answer (an extraction object, or one tool call / canned text reply) is flattened into
leaves `(path, value)`, where a path is a tuple of object keys with "[]" for list elements
(`("items", "[]", "sku")`). Each leaf is learned one of two ways:
- span: the value is written in the user's text (names, SKUs, phone numbers, slot values), so a token
  tagger marks where (BIO tags per path) and the value is copied out verbatim: nothing is invented;
- choice: the value is not in the text (an intent, a function name, an enum, a canned reply), so a
  classifier picks it from the values seen at least `min_count` times in training ("absent" included).
`ExtractorSpec.build` decides per path from the training targets; `rebuild` turns predicted
(path, value, position) facts back into JSON: list elements are formed in reading order (a field that
repeats starts the next element), keys the teacher always writes get their empty form (null, [], {}).
Only one level of lists of objects is regrouped; deeper nesting inside list elements is not supported.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from flywheel.records import Example, message_text
from flywheel.train.formatting import _arguments, classifier_text, target_text

Path = tuple[str, ...]
ITEM = "[]"
TEXT_REPLY = ("content",)
# A path whose values are found in the text at least this often is a span path, else a choice path.
SPAN_RATE = 0.5
# Keys present in at least this share of targets are filled with their empty form when not predicted.
DEFAULT_RATE = 0.5


@dataclass(frozen=True, slots=True)
class Leaf:
    path: Path
    value: Any
    owner: tuple[int, ...]  # indices of the list elements the leaf sits in (which object it belongs to)


@dataclass(frozen=True, slots=True)
class Span:
    path: Path
    start: int
    end: int


def answer_object(example: Example, task: str) -> dict[str, Any] | None:
    """The teacher's answer as one JSON object, or None when it cannot be represented."""
    if task == "extraction":
        try:
            value = orjson.loads(target_text(example, task))
        except orjson.JSONDecodeError:
            return None
        return value if isinstance(value, dict) else None
    if task == "tool_call":
        calls = (example.target or {}).get("tool_calls") or []
        if len(calls) > 1:
            return None  # one call per answer: parallel calls go to the teacher
        if not calls:
            text = message_text(example.target).strip()
            return {"content": text} if text else None
        function = calls[0].get("function") or calls[0]
        arguments = _arguments(function.get("arguments"))
        return {"name": function.get("name"), "arguments": arguments if isinstance(arguments, dict) else {}}
    raise ValueError(f"encoder-extractor handles extraction and tool_call tasks, not {task!r}")


def leaves(value: Any, path: Path = (), owner: tuple[int, ...] = ()) -> list[Leaf]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in leaves(item, (*path, str(key)), owner)]
    if isinstance(value, list):
        return [leaf for i, item in enumerate(value) for leaf in leaves(item, (*path, ITEM), (*owner, i))]
    return [] if value is None else [Leaf(path, value, owner)]


def value_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return value if isinstance(value, str) else str(value)


def occurrences(text: str, value: Any) -> list[tuple[int, int]]:
    """Where `value` is written in `text`: numbers not inside longer digit runs, strings as written
    (case-insensitive when there is no exact match)."""
    if isinstance(value, bool):
        return []
    needle = value_text(value).strip()
    if not needle:
        return []
    if isinstance(value, int | float):
        pattern = re.compile(rf"(?<![\d.]){re.escape(needle)}(?![\d])")
    else:
        pattern = re.compile(re.escape(needle))
        if not pattern.search(text):
            pattern = re.compile(re.escape(needle), re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(text)]


def locate(text: str, items: list[Leaf]) -> tuple[list[Span], list[Leaf]]:
    """Spans for the leaves written in `text` (distinct, closest to their object's other values);
    the leaves that are not written there are returned as they are."""
    spans: list[Span] = []
    missing: list[Leaf] = []
    anchors: dict[tuple[int, ...], list[int]] = defaultdict(list)
    # Long strings first: they are unambiguous and anchor where their object's numbers are.
    ordered = sorted(items, key=lambda leaf: (not isinstance(leaf.value, str), -len(value_text(leaf.value))))
    for leaf in ordered:
        free = [
            (s, e) for s, e in occurrences(text, leaf.value) if all(e <= o.start or s >= o.end for o in spans)
        ]
        if not free:
            missing.append(leaf)
            continue
        anchor = anchors.get(leaf.owner)
        centre = sum(anchor) / len(anchor) if anchor and leaf.owner else None
        start, end = min(free, key=lambda se: abs(se[0] - centre)) if centre is not None else free[0]
        spans.append(Span(leaf.path, start, end))
        anchors[leaf.owner].append(start)
    return spans, missing


@dataclass
class ExtractorSpec:
    """The learned output space: span paths, choice groups and how to rebuild the JSON."""

    task: str
    span_paths: list[list[str]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # {"path": [...], "values": [json,...]}
    types: dict[str, str] = field(default_factory=dict)  # path key -> "int" | "float" | "str" | "bool"
    defaults: list[dict[str, Any]] = field(default_factory=list)  # {"path": [...], "empty": json}
    required_in_items: dict[str, list[str]] = field(default_factory=dict)  # list path -> keys
    args_by_name: dict[str, list[str]] = field(default_factory=dict)  # tool_call: arguments per function
    coverage: float = 0.0  # share of training answers every part of which the student can produce

    @staticmethod
    def build(examples: list[Example], task: str, min_count: int = 2) -> ExtractorSpec:
        objects = [(classifier_text(e), answer_object(e, task)) for e in examples]
        usable = [(text, obj) for text, obj in objects if obj is not None]
        found, seen, types = Counter(), Counter(), {}
        values: dict[Path, Counter] = defaultdict(Counter)
        for text, obj in usable:
            items = leaves(obj)
            spans, _ = locate(text, items)
            found.update(s.path for s in spans)
            for leaf in items:
                seen[leaf.path] += 1
                types[path_key(leaf.path)] = type(leaf.value).__name__
                values[leaf.path][canonical(leaf.value)] += 1
        spec = ExtractorSpec(task=task, types=types)
        for path in sorted(seen):
            if found[path] >= SPAN_RATE * seen[path]:
                spec.span_paths.append(list(path))
                continue
            kept = sorted(v for v, n in values[path].items() if n >= min_count)
            if kept:
                spec.groups.append({"path": list(path), "values": kept})
        spec.defaults = empty_defaults([obj for _, obj in usable])
        spec.required_in_items = required_item_keys([obj for _, obj in usable])
        if task == "tool_call":
            spec.args_by_name = arguments_by_name([obj for _, obj in usable])
        spec.coverage = round(sum(spec.represents(t, o) for t, o in usable) / max(len(objects), 1), 4)
        return spec

    def represents(self, text: str, obj: dict[str, Any]) -> bool:
        """Whether every leaf of `obj` is a locatable span or a known choice."""
        _, missing = locate(text, [leaf for leaf in leaves(obj) if list(leaf.path) in self.span_paths])
        choices = {tuple(g["path"]): set(g["values"]) for g in self.groups}
        others = [leaf for leaf in leaves(obj) if list(leaf.path) not in self.span_paths]
        return not missing and all(canonical(leaf.value) in choices.get(leaf.path, ()) for leaf in others)

    def tag_names(self) -> list[str]:
        names = ["O"]
        for path in self.span_paths:
            names += [f"B-{path_key(tuple(path))}", f"I-{path_key(tuple(path))}"]
        return names

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ExtractorSpec:
        return ExtractorSpec(**data)


def path_key(path: Path) -> str:
    return ".".join(path)


def canonical(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def empty_defaults(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Object keys (outside lists) the teacher writes in most answers, with the empty form it uses."""
    present: Counter = Counter()
    empty: dict[Path, Counter] = defaultdict(Counter)

    def walk(value: dict[str, Any], path: Path) -> None:
        for key, item in value.items():
            here = (*path, str(key))
            present[here] += 1
            if isinstance(item, dict):
                empty[here]["{}"] += 1
                walk(item, here)
            elif isinstance(item, list):
                empty[here]["[]"] += 1
            else:
                empty[here]["null"] += 1

    for obj in objects:
        walk(obj, ())
    total = max(len(objects), 1)
    return [
        {"path": list(path), "empty": orjson.loads(empty[path].most_common(1)[0][0])}
        for path in sorted(present, key=len)
        if present[path] >= DEFAULT_RATE * total
    ]


def required_item_keys(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    """For lists of objects: the keys every element the teacher wrote has (elements lacking one are
    dropped when rebuilding, as a half-read item is worse than none)."""
    keys: dict[Path, list[set[str]]] = defaultdict(list)

    def walk(value: Any, path: Path) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, str(key)))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    keys[(*path, ITEM)].append({k for k, v in item.items() if v is not None})

    for obj in objects:
        walk(obj, ())
    return {path_key(p): sorted(set.intersection(*sets)) for p, sets in keys.items() if sets}


def arguments_by_name(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for obj in objects:
        if obj.get("name"):
            seen[str(obj["name"])].update((obj.get("arguments") or {}).keys())
    return {name: sorted(keys) for name, keys in sorted(seen.items())}


def coerce(text: str, kind: str) -> Any:
    """A copied span as the JSON type the teacher used for that path; None when it does not read."""
    text = text.strip()
    if kind in ("int", "float"):
        number = re.search(r"-?\d+(?:\.\d+)?", text)
        if number is None:
            return None
        return int(float(number.group())) if kind == "int" else float(number.group())
    if kind == "bool":
        return text.lower() in ("true", "yes", "1")
    return text or None


def rebuild(spec: ExtractorSpec, facts: list[tuple[Path, Any, int]]) -> dict[str, Any]:
    """Predicted (path, value, text position) facts -> the answer object, in the teacher's shape."""
    root: dict[str, Any] = {}
    for path, value, _ in sorted(facts, key=lambda f: f[2]):
        insert(root, path, value)
    for default in spec.defaults:
        set_default(root, tuple(default["path"]), default["empty"])
    drop_partial_items(root, (), spec.required_in_items)
    return root


def insert(node: dict[str, Any], path: Path, value: Any) -> None:
    key, rest = path[0], path[1:]
    if not rest:
        node.setdefault(key, value)  # the first (leftmost or most certain) reading of a scalar wins
        return
    if rest[0] != ITEM:
        child = node.setdefault(key, {})
        if isinstance(child, dict):
            insert(child, rest, value)
        return
    items = node.setdefault(key, [])
    if not isinstance(items, list):
        return
    if len(rest) == 1:
        items.append(value)
        return
    if not items or not isinstance(items[-1], dict) or rest[1] in items[-1]:
        items.append({})  # a field the current element already has: the next element starts
    insert(items[-1], rest[1:], value)


def set_default(root: dict[str, Any], path: Path, empty: Any) -> None:
    node: Any = root
    for key in path[:-1]:
        if not isinstance(node, dict) or key not in node:
            return
        node = node[key]
    if isinstance(node, dict) and path[-1] not in node:
        node[path[-1]] = empty


def drop_partial_items(node: Any, path: Path, required: dict[str, list[str]]) -> None:
    if isinstance(node, dict):
        for key, item in node.items():
            drop_partial_items(item, (*path, key), required)
    elif isinstance(node, list):
        needed = required.get(path_key((*path, ITEM)), [])
        node[:] = [i for i in node if not isinstance(i, dict) or all(k in i for k in needed)]
        for item in node:
            drop_partial_items(item, (*path, ITEM), required)
