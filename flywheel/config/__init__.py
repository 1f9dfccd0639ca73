"""Configuration: pydantic models loaded from one YAML file by an explicit `load_config(path)`.

The config package holds every section's model (curation: flywheel.config.curation, serve:
flywheel.config.serve, the rest here) and imports no stage package, so any stage may import it
without a cycle (tests/test_import_rules.py checks that packages form no import cycle).

Every model forbids unknown keys, so a typo fails loudly with the key's path and YAML line instead of
being silently ignored.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flywheel.config.curation import CurationConfig
from flywheel.config.runner import RunnerConfig
from flywheel.config.serve import ServeConfig
from flywheel.config.warehouse import WarehouseConfig
from flywheel.layout import DEFAULT_HOME, HOME_ENV

TaskType = Literal["classification", "extraction", "tool_call", "chat"]
WORKLOAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_CONFIG_BYTES = 16 * 1024 * 1024
MAX_CONFIG_NODES = 1_000_000


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file, line and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ColumnMapping(Strict):
    """How a tabular (CSV/Parquet) source maps onto a chat interaction (snips: system_prompt, encoding)."""

    prompt: str = "prompt"
    response: str = "response"
    label: str | None = None
    system: str | None = None
    system_prompt: str | None = Field(None, description="Constant system prompt to prepend")
    client_id: str | None = None
    timestamp: str | None = None
    model: str | None = None
    workload_id: str | None = None
    encoding: str | None = Field(None, description="snips: auto (UTF-8, else Latin-1) | a codec name")


class SourceConfig(Strict):
    path: str = Field(description="File, directory or glob of log files")
    format: str = Field("auto", description="auto (detected per file) or a connector's name")
    mapping: ColumnMapping | None = None

    @field_validator("format")
    @classmethod
    def _format_is_a_connector(cls, value: str) -> str:
        from connectors.base import source_formats  # the connector registry is the one list

        known = source_formats()
        if value not in known:
            raise ValueError(f"unknown format {value!r} (known: {', '.join(known)})")
        return value


class LabelParser(Strict):
    """How to read the label/answer out of a free-text assistant message."""

    regex: str | None = Field(None, description="First capture group (or whole match) is the label")
    json_path: str | None = Field(None, description="Dotted path into a JSON answer, e.g. $.intent")
    lowercase: bool = False

    @field_validator("regex")
    @classmethod
    def _regex_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from exc
        return value


class TeacherConfig(Strict):
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; None = replay only")
    model: str = "gpt-4o-mini"
    api_key_env: str = Field("OPENAI_API_KEY", description="Name of the env var holding the key")
    headers: dict[str, str] = Field(default_factory=dict)
    concurrency: int = Field(16, ge=1, le=1024)
    requests_per_minute: int | None = Field(None, ge=1)
    tokens_per_minute: int | None = Field(None, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(
        5,
        ge=0,
        le=20,
        description="Retries after the first attempt of a 429/5xx/timeout, honouring Retry-After "
        "(labeling and the serve fallback alike; flywheel/openai_client.py)",
    )
    max_usd: float | None = Field(None, ge=0, description="Hard budget per run")
    prompt_version: str = "v1"
    k_votes: int = Field(1, ge=1, le=25, description="Samples per item in relabel; majority vote wins")
    vote_temperature: float = Field(0.7, ge=0, le=2, description="Sampling temperature when k_votes > 1")
    max_tokens: int | None = Field(None, ge=1, description="Completion cap per teacher call")
    logprobs_top_k: int | None = Field(None, ge=0, le=20, description="Keep top-k logprobs per token")
    supports_json_schema: bool = Field(True, description="Endpoint honours response_format json_schema")


DEFAULT_STUDENT_NAME = "scratch-tiny"


class StudentConfig(Strict):
    name: str = Field(description="Used in model ids and checkpoint paths: letters, digits, '_', '-', '.'")
    kind: str = Field(
        "scratch",
        description="A student kind registered in flywheel.train.kinds: scratch, causal-lm, "
        "encoder-classifier, encoder-extractor, schema-tool (checked when training resolves it)",
    )
    base: str | None = Field(None, description="Hub id or local path (causal-lm, encoder-*)")
    size: Literal["tiny", "small"] = "tiny"
    method: Literal["full", "lora", "ia3", "prompt-tuning", "top-k-layers"] = "full"
    epochs: float = Field(3.0, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, ge=1)
    max_seq_length: int = Field(256, ge=16)
    options: dict[str, Any] = Field(default_factory=dict, description="Method-specific settings")

    @field_validator("name")
    @classmethod
    def _name_is_safe(cls, value: str) -> str:
        # The name becomes <models>/<workload>/.runs/<name>-<key>, which a fresh run rmtree()s: a
        # name like "../../x" would point that outside FLYWHEEL_HOME.
        if not WORKLOAD_ID_RE.match(value):  # no '/', and a leading letter or digit: never '..'
            raise ValueError("must be 1-64 of letters, digits, '_', '-', '.' (used in paths)")
        return value


class GateConfig(Strict):
    primary_metric: str | None = Field(None, description="Default per task type")
    min_score: float | None = Field(None, description="Absolute floor on the CI lower bound")
    max_drop_vs_teacher: float | None = Field(
        0.05, description="Reference gold: allowed lower-bound gap to the teacher's score"
    )
    min_agreement: float = Field(
        0.90,
        ge=0,
        le=1,
        description="Reference teacher (replay/relabel): floor on the CI lower bound of agreement",
    )
    slice_min_examples: int = Field(20, ge=1)
    slice_floor: float | None = Field(None, description="Min score for any large-enough slice")
    slice_floors: dict[str, float] = Field(default_factory=dict, description="Per-slice floors (override)")
    min_format_validity: float = Field(0.98, ge=0, le=1)
    min_cost_reduction: float = Field(0.5, ge=0, le=1, description="Fraction cheaper than teacher")
    champion_margin: float = Field(0.01, ge=0, description="Allowed drop vs the current champion")
    min_coverage: float = Field(
        0.2,
        ge=0,
        le=1,
        description="Partial promotion: least share of traffic a calibrated student/teacher cascade "
        "must give the student (flywheel/evaluate/partial.py); 1 turns partial promotion off",
    )
    judge: bool | None = Field(
        None,
        description="chat: score answers with the teacher as judge (judge_agreement becomes the primary "
        "metric); None = when the teacher is a live endpoint (base_url)",
    )


# Per-task gate defaults, applied where flywheel.yaml leaves the key unset. Chat is gated on
# semantic_agreement (an answer agrees when it says what the reference says, metrics/chat): a good
# free-form student reaches 0.9-1.0 and a canned or off-topic one under 0.1, so 0.85 separates them
# while leaving room for the paraphrases a generative student writes.
TASK_GATE_DEFAULTS: dict[str, dict[str, Any]] = {"chat": {"min_agreement": 0.85}}


class ScheduleConfig(Strict):
    """When `retrain-check` starts a turn, and when it rolls a champion back (flywheel/triggers.py)."""

    cron: str | None = "0 2 * * *"
    min_new_records: int = Field(200, ge=0)
    drift_threshold: float = Field(0.1, ge=0, le=1)
    shadow_window_days: float = Field(7.0, gt=0, description="Window of live (shadow) agreement")
    min_shadow_pairs: int = Field(20, ge=1, description="Shadow pairs needed to judge agreement")
    max_complaint_rate: float = Field(
        0.2, ge=0, le=1, description="Share of negative feedback in the window that triggers"
    )
    min_feedback: int = Field(10, ge=1, description="Feedback needed to judge the complaint rate")
    auto_rollback: bool = Field(
        False, description="Roll the champion back to the teacher on a sustained agreement drop"
    )
    rollback_floor: float | None = Field(
        None, ge=0, le=1, description="Agreement floor for a rollback (default gate.min_agreement)"
    )
    rollback_days: int = Field(
        2, ge=1, description="Sustained: the last N days of shadow rows all have ci_high below the floor"
    )


class WorkloadConfig(Strict):
    id: str
    task: TaskType
    description: str = ""
    labels: list[str] | None = None
    json_schema: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    label_parser: LabelParser | None = None
    sources: list[SourceConfig] = Field(default_factory=list)
    teacher: TeacherConfig | None = Field(None, description="Overrides the top-level teacher")
    students: list[StudentConfig] = Field(default_factory=list)
    gate: GateConfig = Field(default_factory=GateConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    curation: CurationConfig = Field(default_factory=CurationConfig, description="Curation settings")

    @field_validator("id")
    @classmethod
    def _id_is_safe(cls, value: str) -> str:
        if not WORKLOAD_ID_RE.match(value):
            raise ValueError("must be 1-64 of letters, digits, '_', '-', '.' (used in paths)")
        return value

    @model_validator(mode="after")
    def _task_has_its_contract(self) -> WorkloadConfig:
        # A classification workload without `labels` is allowed: curation proposes the set (and a
        # label_parser) from the logged answers, and `flywheel init --from LOGS` writes it down.
        if self.labels is not None and not self.labels:
            raise ValueError("`labels` is empty: list the labels, or leave the key out to infer them")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("`labels` has duplicates")
        defaults = {
            key: value
            for key, value in TASK_GATE_DEFAULTS.get(self.task, {}).items()
            if key not in self.gate.model_fields_set
        }
        if defaults:
            # model_copy(update=...) marks the keys as set, so a re-validation keeps them
            self.gate = self.gate.model_copy(update=defaults)
        return self

    def students_or_default(self) -> list[StudentConfig]:
        """The declared students, else the offline default (a tiny causal LM built from the data)."""
        return list(self.students) or [StudentConfig(name=DEFAULT_STUDENT_NAME)]


class FlywheelConfig(Strict):
    home: str = Field(DEFAULT_HOME, description="Artifacts dir; FLYWHEEL_HOME overrides")
    warehouse: WarehouseConfig = Field(
        default_factory=WarehouseConfig, description="a DuckDB file relative to home, or a DuckLake section"
    )
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    prices: dict[str, dict[str, float]] = Field(default_factory=dict, description="$/1M overrides")
    workloads: list[WorkloadConfig] = Field(default_factory=list)
    serve: ServeConfig | None = Field(None, description="`flywheel serve` settings (defaults when absent)")
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Where fan-out stages run")
    source_file: str | None = Field(None, exclude=True)

    @model_validator(mode="after")
    def _unique_workloads(self) -> FlywheelConfig:
        seen: set[str] = set()
        for workload in self.workloads:
            if workload.id in seen:
                raise ValueError(f"workload id {workload.id!r} appears twice")
            seen.add(workload.id)
        return self

    def workload(self, workload_id: str) -> WorkloadConfig:
        for workload in self.workloads:
            if workload.id == workload_id:
                return workload
        known = ", ".join(w.id for w in self.workloads) or "none"
        raise ConfigError(f"unknown workload {workload_id!r} (configured: {known})")

    def teacher_for(self, workload_id: str) -> TeacherConfig:
        return self.workload(workload_id).teacher or self.teacher

    def home_dir(self, override: str | os.PathLike[str] | None = None) -> Path:
        return resolve_home(override or os.environ.get(HOME_ENV) or self.home)

    def warehouse_path(self, home: Path) -> Path:
        """The DuckDB file (backend duckdb); a DuckLake has none (see flywheel.store.open_warehouse)."""
        if self.warehouse.backend != "duckdb":
            raise ConfigError(f"warehouse backend is {self.warehouse.backend}: it has no DuckDB file")
        return self.warehouse.file(home)


def resolve_home(home: str | os.PathLike[str] | None) -> Path:
    return Path(home or os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()


def load_config(path: str | os.PathLike[str]) -> FlywheelConfig:
    """Load and validate a flywheel.yaml; errors name the file, line and key path.

    Whatever the file holds, the only exception is ConfigError (the CLI turns it into one line).
    """
    path = Path(path)
    text = _read_config_text(path)
    data, root = _parse_yaml(path, text)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    try:
        config = FlywheelConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(path, root, exc)) from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: nested too deeply to validate") from exc
    config.source_file = str(path.resolve())
    return config


def _read_config_text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:  # read whole below: refuse before it costs memory
            raise ConfigError(f"{path}: config is over {MAX_CONFIG_BYTES >> 20} MiB; is this the right file?")
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: config file not found") from exc
    except (UnicodeDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc


def _parse_yaml(path: Path, text: str) -> tuple[Any, yaml.Node | None]:
    """(data, node tree). PyYAML recurses per nesting level and turns a 5,000-digit integer into a
    ValueError; both become ConfigError. Aliases are counted expanded, so a "billion laughs" file is
    refused before anything walks it."""
    try:
        root = yaml.compose(text)
        if _expanded_nodes(root) > MAX_CONFIG_NODES:
            raise ConfigError(f"{path}: YAML aliases expand to over {MAX_CONFIG_NODES:,} values")
        return yaml.safe_load(text) or {}, root
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: invalid YAML: nested too deeply") from exc
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: invalid YAML value: {exc}") from exc


def _expanded_nodes(root: yaml.Node | None) -> int:
    """How many values the document holds once aliases are expanded (iterative, memoised per node);
    a recursive alias (`&a [*a]`) counts as too many."""
    if root is None:
        return 0
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        children = _children(node)
        if children_done or not children:
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in children)
            open_nodes.discard(id(node))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:
            return MAX_CONFIG_NODES + 1
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _describe_errors(path: Path, root: yaml.Node | None, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if not isinstance(part, str) or "[" not in part]
        key = _format_loc(loc)
        line = _line_of(root, loc)
        where = f"{path}:{line}" if line else str(path)
        lines.append(f"{where}: {key or '<root>'}: {error['msg']}")
    return "\n".join(lines)


def _format_loc(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """Walk the YAML node tree along `loc` and return the 1-based line of the deepest match."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
            key_node = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                return line
            line = (key_node or match).start_mark.line + 1
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
