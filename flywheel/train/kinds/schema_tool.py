"""The `schema-tool` kind: a tool-calling student that reads each request's own function schemas, so
it generalizes to functions never seen in training (flywheel.train.schematool). MiniLM scores every
offered function and a "reply in text" option against the conversation, then answers one extractive
question per parameter (span, true/false or absent), guided by the parameter's name, description,
type and enum; values are typed candidates read from the text (numbers, names, ids, lists), ranked
by span heads in one joint assignment per call, and the call is checked against the schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flywheel.config import ConfigError
from flywheel.train.kinds import KindSpec


class SchemaToolOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    negatives: int = Field(2, ge=0, description="Functions from other conversations added as distractors")
    text_option_rate: float = Field(
        0.1, ge=0, lt=1, description="Share of chooser groups whose right function is withheld (-> text)"
    )
    max_options: int = Field(6, ge=2, description="Options per chooser group in training (text included)")
    chooser_group: int = Field(4, ge=1, description="Conversations per chooser step")
    max_length: int = Field(512, ge=64, le=512, description="Parameter question + conversation tokens")
    chooser_max_length: int = Field(192, ge=64, le=512, description="Function text + conversation tokens")
    train_layers: int = Field(
        3,
        ge=0,
        description="Top encoder layers trained (0: all); the rest stay as pretrained, "
        "which halves a step's cost on CPU",
    )
    max_span_tokens: int = Field(40, ge=1, description="Longest value copied, in tokens")
    head_lr_multiplier: float = Field(10.0, gt=0, description="Heads' learning rate / encoder's")
    chooser: Literal["cross", "bi"] = Field(
        "cross",
        description="cross: each (function, conversation) pair encoded together; bi: the conversation "
        "(roles, clipped tool results, a state line) and each function encoded once, cosine-scored "
        "(one long encoding per step: multi-turn agents with many tools)",
    )


def fit(context: Any, train: list, val: list, manifest: dict[str, Any]) -> Any:
    from flywheel.train.encoder import resolve_encoder_base
    from flywheel.train.pipeline import Built
    from flywheel.train.schematool.fit import fit_schema_tool
    from flywheel.train.schematool.model import load_base

    settings = context.settings
    model, tokenizer = load_base(resolve_encoder_base(settings.base))
    history, rate, counts = fit_schema_tool(
        model, tokenizer, train, settings, seed=context.seed, progress=context.progress
    )
    manifest.update(schema_tool=settings.options.kind_options, truncation_side="left", **counts)
    return Built(model, tokenizer, history, rate, None, manifest)


def student(manifest: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    from flywheel.train.schematool.student import SchemaToolStudent

    return SchemaToolStudent(manifest, model, tokenizer)


def load(path: Path, manifest: dict[str, Any], batch_size: int, device: str) -> Any:
    from flywheel.train.schematool.model import load_saved
    from flywheel.train.schematool.student import SchemaToolStudent

    model, tokenizer = load_saved(Path(path))
    return SchemaToolStudent(manifest, model.to(device), tokenizer, batch_size)


def check(candidate: Any, workload: Any, options: Any, where: str) -> None:
    if options.postprocess.prune or options.postprocess.quantize:
        raise ConfigError(f"{where}: kind schema-tool has no prune/quantize variants")


KIND = KindSpec(
    name="schema-tool",
    fit=fit,
    student=student,
    load=load,
    tasks=frozenset({"tool_call"}),
    methods=frozenset({"full"}),
    learning_rates={"full": 5e-5},
    options=SchemaToolOptions,
    encoder=True,
    truncation_side="left",
    check=check,
    description="MiniLM cross-encoder function chooser + extractive parameter filler over the "
    "request's own schemas (functions unseen in training included)",
)
