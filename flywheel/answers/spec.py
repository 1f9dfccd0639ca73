"""What a workload's answers must look like: the task, label set, label parser, JSON schema, tools.

`AnswerSpec` is the part of a workload's config the answer contract needs. It is built from a
`WorkloadConfig` (curation, evaluation, serving) or read back from a model bundle (a served student
carries the contract it was trained under), so it round-trips through plain JSON.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from flywheel.records import canonical_dumps

if TYPE_CHECKING:
    from flywheel.config import WorkloadConfig


@dataclass(frozen=True, slots=True)
class ParserSpec:
    """How to read a label out of free text: a dotted JSON path, then a regex group, then lowercase."""

    regex: str | None = None
    json_path: str | None = None
    lowercase: bool = False


@dataclass(frozen=True, slots=True)
class AnswerSpec:
    task: str
    labels: tuple[str, ...] | None = None
    parser: ParserSpec | None = None
    json_schema: dict[str, Any] | None = field(default=None, hash=False)
    tools: tuple[dict[str, Any], ...] | None = field(default=None, hash=False)

    @classmethod
    def of(cls, workload: WorkloadConfig) -> AnswerSpec:
        parser = workload.label_parser
        return cls(
            task=workload.task,
            labels=tuple(workload.labels) if workload.labels else None,
            parser=ParserSpec(parser.regex, parser.json_path, parser.lowercase) if parser else None,
            json_schema=workload.json_schema,
            tools=tuple(workload.tools) if workload.tools else None,
        )

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["labels"] = list(self.labels) if self.labels else None
        out["tools"] = list(self.tools) if self.tools else None
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerSpec:
        parser = data.get("parser")
        return cls(
            task=str(data["task"]),
            labels=tuple(data["labels"]) if data.get("labels") else None,
            parser=ParserSpec(**parser) if parser else None,
            json_schema=data.get("json_schema"),
            tools=tuple(data["tools"]) if data.get("tools") else None,
        )

    def canonical(self) -> AnswerSpec:
        """The same contract for answers already in canonical form (a student's bare label)."""
        return AnswerSpec(self.task, self.labels, None, self.json_schema, self.tools)


def schema_for(spec: AnswerSpec, request: dict[str, Any] | None) -> dict[str, Any] | None:
    """The workload's JSON schema, else the one the request sent as response_format."""
    if spec.json_schema:
        return spec.json_schema
    response_format = (request or {}).get("response_format")
    if isinstance(response_format, dict):
        inner = response_format.get("json_schema")
        if isinstance(inner, dict) and isinstance(inner.get("schema"), dict):
            return inner["schema"]
    return None


def tool_schemas(spec: AnswerSpec, request: dict[str, Any] | None) -> dict[str, dict[str, Any] | None]:
    """Tool name -> parameters schema, from the request's own tools, else the workload's."""
    tools = (request or {}).get("tools") or spec.tools or []
    out: dict[str, dict[str, Any] | None] = {}
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            out[function["name"]] = parameters if isinstance(parameters, dict) else None
    return out


def schema_error(schema: dict[str, Any], value: Any) -> str | None:
    """The first place `value` breaks `schema` ("path: message"), or None when it fits.

    A schema the validator cannot use (unknown types and the like) is reported as such, never raised:
    one odd request schema must not stop a stage.
    """
    validator = _validator(canonical_dumps(schema).decode())
    if isinstance(validator, str):  # the schema itself is unusable even once normalized
        return f"<schema>: {validator}"
    try:
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
    except Exception as exc:  # jsonschema raises several unrelated types for schemas it cannot walk
        return f"<schema>: unusable schema ({type(exc).__name__}: {short(str(exc), 80)})"
    if not errors:
        return None
    error = errors[0]
    where = "/".join(str(p) for p in error.absolute_path) or "<root>"
    return f"{where}: {short(error.message, 120)}"


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    """A validator of the schema with non-standard types normalized (flywheel.schemas), or why not."""
    from flywheel.schemas import build_validator

    return build_validator(json.loads(schema_json))


def short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
