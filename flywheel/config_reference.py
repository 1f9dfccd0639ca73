"""`flywheel config reference`: every key flywheel.yaml accepts, generated from the pydantic models.

Generated, never written by hand, so it cannot drift from what `load_config` accepts. A student's
free-form `options` mapping is documented from the model that validates it at training time
(`flywheel.train.config.TrainOptions`).
"""

from __future__ import annotations

import json
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo, PydanticUndefined

# Keys typed as a free-form mapping whose real schema is another model, validated at a later stage.
DOCUMENTED_ELSEWHERE: dict[str, str] = {
    "workloads[].students[].options": "flywheel.train.config:TrainOptions"
}


@dataclass(frozen=True, slots=True)
class ConfigKey:
    path: str  # dotted, `[]` for list items: workloads[].gate.min_agreement
    type: str
    default: str  # "required" when the key has no default
    description: str

    def as_dict(self) -> dict[str, str]:
        return {"key": self.path, "type": self.type, "default": self.default, "description": self.description}


def reference() -> list[ConfigKey]:
    """Every key of flywheel.yaml, depth first in declaration order."""
    from flywheel.config import FlywheelConfig

    return list(_walk(FlywheelConfig, ""))


def _walk(model: type[BaseModel], prefix: str) -> typing.Iterator[ConfigKey]:
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        yield ConfigKey(path, _type_name(info.annotation), _default(info), info.description or "")
        nested, suffix = _nested_model(info.annotation)
        if path in DOCUMENTED_ELSEWHERE:
            nested, suffix = _load(DOCUMENTED_ELSEWHERE[path]), ""
        if nested is not None:
            yield from _walk(nested, f"{path}{suffix}.")


def _load(target: str) -> type[BaseModel]:
    import importlib

    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _nested_model(annotation: Any) -> tuple[type[BaseModel] | None, str]:
    """The model inside `annotation` (X, X | None, list[X], dict[str, X]) and the path suffix it adds."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (list, tuple) and args:
        model, _ = _nested_model(args[0])
        return model, "[]"
    if origin is dict and len(args) == 2:
        model, _ = _nested_model(args[1])
        return model, ".<name>"
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            model, suffix = _nested_model(arg)
            if model is not None:
                return model, suffix
    return None, ""


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _default(info: FieldInfo) -> str:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return "{...}" if isinstance(value, BaseModel) else json.dumps(value)
    if info.default is PydanticUndefined:
        return "required"
    value = info.default
    return "{...}" if isinstance(value, BaseModel) else json.dumps(value, default=str)


def markdown(keys: list[ConfigKey]) -> str:
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for key in keys:
        cells = [f"`{key.path}`", key.type, f"`{key.default}`", key.description]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def student_kinds() -> list[dict[str, str]]:
    """The student kinds the registry knows: name, tasks, methods, what it is."""
    from flywheel.train.kinds import registry

    return [
        {
            "kind": name,
            "tasks": ", ".join(sorted(spec.tasks)) if spec.tasks else "all",
            "methods": ", ".join(sorted(spec.methods)) if spec.methods else "all",
            "needs_base": "yes" if spec.needs_base else "no",
            "description": spec.description,
        }
        for name, spec in registry().items()
    ]


def kinds_markdown(kinds: list[dict[str, str]]) -> str:
    lines = ["| kind | tasks | methods | needs `base` | what it is |", "| --- | --- | --- | --- | --- |"]
    for k in kinds:
        lines.append(
            f"| `{k['kind']}` | {k['tasks']} | {k['methods']} | {k['needs_base']} | {k['description']} |"
        )
    return "\n".join(lines) + "\n"
