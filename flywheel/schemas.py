"""JSON schemas as real logs send them -> standard JSON Schema, or the reason one cannot be used.

Function schemas written by people and tools other than OpenAI's use type names JSON Schema does not
have ("dict", "float", "tuple", "any", "int", "str", Python generics like "List[str]"), draft-3
style `required: true` on a property, `properties` as a list of named parameters... jsonschema
rejects such a schema only when it validates an instance, with an exception (`Unknown type
'float'`). `normalize_schema` rewrites what has one obvious meaning and lists each change;
`schema_problem` says (as a string) what is still wrong with a schema, checked against its draft's
meta-schema; `build_validator` is both, for the places that validate answers; and
`normalize_request_schemas` applies them to a chat request's tools and response_format.

A schema that needs no change comes back as the very same object, so a request without
non-standard schemas is stored exactly as logged and keeps its content-addressed id.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import unquote

import orjson

JSON_TYPES = frozenset(("object", "array", "string", "number", "integer", "boolean", "null"))
ANY = "any"  # the alias value for "no type constraint"
TYPE_ALIASES: dict[str, str] = {
    **dict.fromkeys(("dict", "map", "mapping", "hash", "hashmap", "struct", "record"), "object"),
    **dict.fromkeys(("float", "double", "decimal", "real", "numeric", "float32", "float64"), "number"),
    **dict.fromkeys(("int", "long", "short", "bigint", "int32", "int64", "uint", "uint32"), "integer"),
    **dict.fromkeys(("str", "text", "char", "date", "datetime", "time", "uri", "url"), "string"),
    **dict.fromkeys(("bool",), "boolean"),
    **dict.fromkeys(("list", "tuple", "set", "frozenset", "sequence", "iterable", "arr"), "array"),
    **dict.fromkeys(("none", "nonetype", "nil", "void"), "null"),
    **dict.fromkeys(("any", "*", "mixed", "unknown", "anytype"), ANY),
}
SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
SCHEMA_ONE = ("additionalProperties", "additionalItems", "contains", "not", "if", "then", "else",
              "propertyNames", "unevaluatedItems", "unevaluatedProperties")  # fmt: skip
SCHEMA_LISTS = ("anyOf", "allOf", "oneOf", "prefixItems")
GENERIC_RE = re.compile(r"^([a-z_][a-z0-9_.]*)\s*\[(.*)\]$")
UNION_SPLIT_RE = re.compile(r"\s*\|\s*|\s+or\s+")
MAX_CHANGES_KEPT = 20


class InvalidSchema(ValueError):
    """A request schema that stays invalid after normalizing; `reason` is its quarantine code."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def normalize_schema(schema: Any, where: str = "") -> tuple[Any, list[str]]:
    """(standard schema, changes made): the same object back when nothing needed a change."""
    changes: list[str] = []
    tuple_key = "items" if isinstance(schema, dict) and "$schema" in schema else "prefixItems"
    out = _node(schema, where, changes, tuple_key)
    return (out, changes) if changes else (schema, changes)


def _node(node: Any, path: str, changes: list[str], tuple_key: str) -> Any:
    """One (sub)schema, rebuilt with its subschemas normalized."""
    if not isinstance(node, dict):
        return node  # true/false are schemas; anything else is schema_problem's to name
    out: dict[str, Any] = {}
    lifted: list[str] = []
    for key, value in node.items():
        here = f"{path}.{key}" if path else key
        if key == "type":
            value = _type_value(value, here, changes)
            if value is None:
                continue
        elif key == "required" and isinstance(value, bool):
            changes.append(f"{here}: a boolean (draft 3) -> the parent's required list")
            continue
        elif key == "properties" and isinstance(value, list):
            value = _properties_from_list(value, here, changes)
        if key in SCHEMA_MAPS and isinstance(value, dict):
            lifted = _required_true(value) if key == "properties" else lifted
            value = {name: _node(sub, f"{here}.{name}", changes, tuple_key) for name, sub in value.items()}
        elif key in SCHEMA_ONE:
            value = _node(value, here, changes, tuple_key)
        elif key in SCHEMA_LISTS and isinstance(value, list):
            value = [_node(sub, f"{here}[{i}]", changes, tuple_key) for i, sub in enumerate(value)]
        elif key == "items":
            key, value = _items(value, here, changes, tuple_key)
        out[key] = value
    if lifted:
        required = out.get("required")
        required = list(required) if isinstance(required, list) else []
        out["required"] = required + [name for name in lifted if name not in required]
    return out


def _required_true(properties: dict[str, Any]) -> list[str]:
    """Names of the properties marked `required: true` draft-3 style (lifted to the parent)."""
    return [name for name, sub in properties.items() if isinstance(sub, dict) and sub.get("required") is True]


def _items(value: Any, here: str, changes: list[str], tuple_key: str) -> tuple[str, Any]:
    """`items`, or a positional list of item schemas (moved to prefixItems under draft 2020-12)."""
    if not isinstance(value, list):
        return "items", _node(value, here, changes, tuple_key)
    if tuple_key != "items":
        changes.append(f"{here}: a list of item schemas -> {tuple_key}")
    return tuple_key, [_node(sub, f"{here}[{i}]", changes, tuple_key) for i, sub in enumerate(value)]


def _type_value(value: Any, here: str, changes: list[str]) -> Any:
    """A standard `type` value, None for "no constraint", or the value unchanged when unknown."""
    names = value if isinstance(value, list) else [value]
    if not all(isinstance(name, str) for name in names):
        return value
    mapped: list[str] = []
    for name in names:
        types = json_types(name)
        if types is None:
            return value  # unknown: left for schema_problem to name
        if ANY in types:
            changes.append(f"{here}: {value!r} -> no type constraint")
            return None
        mapped.extend(t for t in types if t not in mapped)
    new = mapped[0] if isinstance(value, str) and len(mapped) == 1 else mapped
    if new != value:
        changes.append(f"{here}: {value!r} -> {new!r}")
    return new


def json_types(name: str) -> list[str] | None:
    """The JSON Schema types a type name stands for (["any"] for none), or None when unknown."""
    key = name.strip().lower()
    if key in JSON_TYPES:
        return [key]
    if key in TYPE_ALIASES:
        return [TYPE_ALIASES[key]]
    parts = [p for p in UNION_SPLIT_RE.split(key) if p]
    if len(parts) > 1:
        return _union(parts)
    match = GENERIC_RE.match(key)
    if match is None:
        return None
    head, inner = match.group(1).rsplit(".", 1)[-1], _split_top(match.group(2))
    if head in ("optional", "union"):
        found = _union(inner)
        return None if found is None else ([*found, "null"] if head == "optional" else found)
    base = TYPE_ALIASES.get(head, head if head in JSON_TYPES else None)
    return None if base is None else [base]


def _union(parts: list[str]) -> list[str] | None:
    out: list[str] = []
    for part in parts:
        types = json_types(part)
        if types is None:
            return None
        if ANY in types:
            return [ANY]
        out.extend(t for t in types if t not in out)
    return out


def _split_top(text: str) -> list[str]:
    """Split "a, b[c, d]" on its top-level commas."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += (char == "[") - (char == "]")
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _properties_from_list(value: list[Any], here: str, changes: list[str]) -> Any:
    """[{"name": "x", "type": ...}, ...] -> {"x": {"type": ...}} (a common parameter-list style)."""
    if not value or not all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in value):
        return value
    changes.append(f"{here}: a list of named parameters -> an object of properties")
    return {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in value}


def schema_problem(schema: Any) -> str | None:
    """What makes `schema` unusable for validation, checked against its draft; None when usable."""
    if isinstance(schema, bool):
        return None
    if not isinstance(schema, dict):
        return f"a schema must be an object, got {type(schema).__name__}"
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        return f"cannot be written as JSON: {exc}"
    return _checked(key)


@functools.lru_cache(maxsize=4096)
def _checked(schema_json: bytes) -> str | None:
    import jsonschema

    schema = orjson.loads(schema_json)
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = ".".join(str(p) for p in exc.absolute_path) or "<root>"
        return f"{where}: {_short(exc.message)}"
    except Exception as exc:  # a malformed schema may fail anywhere inside jsonschema
        return f"{type(exc).__name__}: {_short(str(exc))}"
    return _ref_problem(schema, schema, "")


def _ref_problem(root: Any, node: Any, path: str) -> str | None:
    """A `$ref` that cannot be resolved inside the schema (validation would raise on it), or None."""
    if isinstance(node, list):
        return next((p for i, sub in enumerate(node) if (p := _ref_problem(root, sub, f"{path}[{i}]"))), None)
    if not isinstance(node, dict):
        return None
    ref = node.get("$ref")
    if isinstance(ref, str) and not _resolves(root, ref):
        return f"{path or '<root>'}: $ref {_short(ref, 80)!r} does not resolve inside the schema"
    for key, sub in node.items():
        if key not in ("enum", "const", "default", "examples") and isinstance(sub, dict | list):
            problem = _ref_problem(root, sub, f"{path}.{key}" if path else key)
            if problem:
                return problem
    return None


def _resolves(root: Any, ref: str) -> bool:
    """A local JSON pointer ("#/$defs/x") that exists, "#", or a named anchor the schema defines."""
    if ref == "#":
        return True
    if not ref.startswith("#"):
        return False  # remote or relative: nothing is fetched
    if not ref.startswith("#/"):
        return ref[1:] in _anchors(root)
    node = root
    for part in ref[2:].split("/"):
        part = unquote(part).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False
    return True


def _anchors(node: Any) -> set[str]:
    if isinstance(node, list):
        return set().union(*(_anchors(sub) for sub in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {node[k] for k in ("$anchor", "$dynamicAnchor") if isinstance(node.get(k), str)}
    return found.union(*(_anchors(sub) for sub in node.values() if isinstance(sub, dict | list)))


def build_validator(schema: Any) -> Any:
    """A jsonschema validator for the normalized schema, or a string saying why there is none."""
    import jsonschema

    schema, _ = normalize_schema(schema)
    problem = schema_problem(schema)
    if problem is not None:
        return f"unusable schema: {problem}"
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


SCHEMA_CHANGES_KEY = "schema_changes"  # metadata key: what ingestion changed in the request's schemas


def normalize_request_schemas(request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The chat request with `tools[*].function.parameters` (and legacy `functions`) and
    `response_format.json_schema.schema` normalized, plus the changes; the same object when none.

    Raises InvalidSchema ("invalid_tool_schema" / "invalid_response_schema", naming the tool and the
    problem) when a schema is still unusable after normalizing, or "unserializable" when it is
    nested too deep to walk or to write back as JSON.
    """
    try:
        return _request_schemas(request)
    except (TypeError, RecursionError) as exc:  # orjson's 254-level limit, or Python's recursion limit
        raise InvalidSchema(
            "unserializable", f"request schemas nested too deep: {type(exc).__name__}"
        ) from None


def _request_schemas(request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    out, changes = request, []
    for key in ("tools", "functions"):
        tools = request.get(key)
        if isinstance(tools, list) and tools:
            fixed, found, problem = _tool_schemas(_json(tools), key)
            if problem is not None:
                raise InvalidSchema("invalid_tool_schema", problem)
            if fixed is not None:
                out = {**out, key: orjson.loads(fixed)}
                changes.extend(found)
    response_format = request.get("response_format")
    inner = response_format.get("json_schema") if isinstance(response_format, dict) else None
    if isinstance(inner, dict) and "schema" in inner:
        fixed, found, problem = _response_schema(_json(inner["schema"]))
        if problem is not None:
            raise InvalidSchema("invalid_response_schema", problem)
        if fixed is not None:
            schema = orjson.loads(fixed)
            out = {**out, "response_format": {**response_format, "json_schema": {**inner, "schema": schema}}}
            changes.extend(found)
    return out, changes


Normalized = tuple[bytes | None, tuple[str, ...], str | None]  # (JSON if changed, changes, problem)


@functools.lru_cache(maxsize=1024)
def _tool_schemas(tools_json: bytes, key: str) -> Normalized:
    """One tools list, normalized. Cached on its JSON: agents send the same tools with every call,
    and a fresh copy is decoded for each record, so no two records share (mutable) objects."""
    tools = orjson.loads(tools_json)
    changes: list[str] = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and key == "tools" else tool
        if not isinstance(function, dict) or function.get("parameters") is None:
            continue
        label = f"{key}[{index}] ({function.get('name')!s:.80})"
        schema, found = normalize_schema(function["parameters"], f"{label}.parameters")
        problem = schema_problem(schema)
        if problem is not None:
            return None, (), f"{label} parameters: {problem}"
        if found:
            function["parameters"] = schema
            changes.extend(found)
    return (_json(tools) if changes else None), tuple(changes), None


@functools.lru_cache(maxsize=256)
def _response_schema(schema_json: bytes) -> Normalized:
    where = "response_format.json_schema.schema"
    schema, found = normalize_schema(orjson.loads(schema_json), where)
    problem = schema_problem(schema)
    if problem is not None:
        return None, (), f"{where}: {problem}"
    return (_json(schema) if found else None), tuple(found), None


def _json(value: Any) -> bytes:
    """JSON for a cache key or a normalized copy (non-string keys only where a log has them)."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
