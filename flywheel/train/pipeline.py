"""The body of `train_candidate`: fit, save, score on validation, then the post-training variants.

Each saved directory gets a manifest (`flywheel.json`) and model card; variants (`pruned/`, `int8/`)
are complete directories of their own, registered as separate candidates so the gate can keep the
cheapest one that passes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.bundle import write_bundle
from flywheel.records import Example, utcnow
from flywheel.train.artifacts import code_version, loss_curve, write_manifest
from flywheel.train.candidate import RunContext, TrainedCandidate
from flywheel.train.config import settings_fingerprint
from flywheel.train.formatting import message_as_text, target_text
from flywheel.train.postprocess import (
    count_parameters,
    directory_size,
    drop_layers,
    layers_to_drop,
    measure_throughput,
    merge_adapters,
    quantize_int8,
    save_int8,
)
from flywheel.train.search import fit_summary
from flywheel.train.sft import decoder_layers, quiet_libraries
from flywheel.train.student import INT8_WEIGHTS

ADAPTER_DIR = "adapter"


@dataclass
class Built:
    """A trained model in memory, before saving."""

    model: Any
    tokenizer: Any
    log_history: list[dict[str, Any]]
    tokens_per_second: float
    resumed_from_step: int | None
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_fit(cls, model: Any, tokenizer: Any, fit: Any, manifest: dict[str, Any]) -> Built:
        """A model a trainer just fitted (`fit`: its FitResult: log history, speed, resume point)."""
        return cls(model, tokenizer, fit.log_history, fit.tokens_per_second, fit.resumed_from_step, manifest)


def run_candidate(
    context: RunContext, train: list[Example], val: list[Example], started: float
) -> TrainedCandidate:
    from transformers import set_seed

    with quiet_libraries():
        set_seed(context.seed)
        built = fit(context, train, val)
        built.model = (
            merge_adapters(built.model) if context.settings.options.postprocess.merge else built.model
        )
        base = save_variant(context, built, "base", context.artifact_dir, val, time.monotonic() - started)
        base.variants = make_variants(context, built, base, train, val)
    return base


def fit(context: RunContext, train: list[Example], val: list[Example] | None = None) -> Built:
    settings, workload = context.settings, context.workload
    manifest = {
        "task": workload.task,
        "labels": workload.labels,
        "include_tools": settings.options.include_tools,
    }
    from flywheel.train.kinds import get_kind

    return get_kind(settings.kind).fit(context, train, val or [], manifest)


def fit_causal_candidate(context: RunContext, train: list[Example], manifest: dict[str, Any]) -> Built:
    from flywheel.train.causal import fit_causal

    settings = context.settings
    build = fit_causal(
        settings,
        train,
        context.workload.task,
        context.hardware,
        context.run_dir / "main",
        teacher_logprobs=context.teacher_logprobs,
        seed=context.seed,
        progress=context.progress,
        resume=True,
    )
    manifest.update(max_new_tokens=build.max_new_tokens, loss=build.loss, **build.extra)
    return Built.from_fit(build.model, build.tokenizer, build.fit, manifest)


def fit_classifier_candidate(
    context: RunContext, train: list[Example], val: list[Example] | None, manifest: dict[str, Any]
) -> Built:
    """Length, learning rate and epochs chosen from the data (flywheel.train.search), on record."""
    from flywheel.train.encoder import label_space
    from flywheel.train.search import fit_classifier

    labels = label_space(context.workload.labels, train)
    found = fit_classifier(
        context.settings, labels, train, val or [], context.hardware, context.run_dir / "main",
        seed=context.seed, progress=context.progress, resume=True,
    )  # fmt: skip
    manifest.update(
        labels=labels,
        skipped_unknown_labels=found.skipped,
        truncation_side=found.tokenizer.truncation_side,
        max_seq_length=found.report["max_length"]["max_length"],
        fit=found.report,
        learning_curve=found.curve,
    )
    return Built.from_fit(found.model, found.tokenizer, found.fit, manifest)


def fit_extractor_candidate(context: RunContext, train: list[Example], manifest: dict[str, Any]) -> Built:
    from flywheel.train.extractor import fit_extractor, load_extractor
    from flywheel.train.extractor_spec import ExtractorSpec

    spec = ExtractorSpec.build(train, context.workload.task)
    model, tokenizer = load_extractor(context.settings, spec)
    result, skipped = fit_extractor(
        model, tokenizer, train, context.settings, context.hardware, context.run_dir / "main",
        seed=context.seed, progress=context.progress, resume=True,
    )  # fmt: skip
    manifest.update(extractor=spec.as_dict(), skipped_unrepresentable=skipped)
    return Built.from_fit(model, tokenizer, result, manifest)


def save_weights(model: Any, tokenizer: Any, directory: Path) -> str:
    """safetensors + tokenizer; a soft prompt is saved next to its base as an adapter folder."""
    from peft import PeftModel

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory))
    if isinstance(model, PeftModel):
        # LoRA/IA3 layers live inside the base modules: save a clean copy of the base beside the adapter.
        prompt_learning = model.peft_config[model.active_adapter].is_prompt_learning
        base = model.get_base_model() if prompt_learning else copy.deepcopy(model).unload()
        base.save_pretrained(str(directory))
        model.save_pretrained(str(directory / ADAPTER_DIR))
        return "safetensors+adapter"
    model.save_pretrained(str(directory))
    return "safetensors"


def student_for(manifest: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    from flywheel.train.kinds import get_kind

    model.eval()
    return get_kind(manifest["kind"]).student(manifest, model, tokenizer)


def validation_metrics(
    student: Any, val: list[Example], task: str, limit: int, measure: int
) -> dict[str, Any]:
    """Exact agreement with the teacher's answers on (up to `limit`) validation examples, and speed."""
    metrics: dict[str, Any] = {}
    sample = val[:limit]
    if sample:
        predictions = student.predict(sample)
        agree = sum(
            message_as_text(p.message).strip() == target_text(e, task).strip()
            for p, e in zip(predictions, sample, strict=True)
        )
        metrics["val_exact_match"] = round(agree / len(sample), 4)
        metrics["val_examples"] = len(sample)
    timed = (val or [])[:measure]
    if timed:
        speed = measure_throughput(student, timed)
        metrics.update({f"generate_{k}": v for k, v in speed.items()})
    return metrics


def save_variant(
    context: RunContext, built: Built, variant: str, directory: Path, val: list[Example], train_seconds: float
) -> TrainedCandidate:
    settings = context.settings
    weights = save_weights(built.model, built.tokenizer, directory)
    name = settings.name if variant == "base" else f"{settings.name}+{variant}"
    model_id = context.model_id if variant == "base" else f"{context.workload.id}/{name}/{context.version}"
    manifest = base_manifest(context, built, variant, model_id, name, weights)
    return finish_variant(context, built, manifest, directory, val, train_seconds)


def base_manifest(
    context: RunContext, built: Built, variant: str, model_id: str, name: str, weights: str
) -> dict[str, Any]:
    settings = context.settings
    return {
        "format": 1,
        "model_id": model_id,
        "name": name,
        "workload_id": context.workload.id,
        "kind": settings.kind,
        "base": settings.base,
        "method": settings.method,
        "variant": variant,
        "weights": weights,
        "adapter": ADAPTER_DIR if weights.endswith("adapter") else None,
        "max_seq_length": settings.max_seq_length,
        "snapshot_id": context.snapshot_id,
        "seed": context.seed,
        "config": settings_fingerprint(settings),
        "teacher": context.teacher,
        "hardware": context.hardware.as_dict(),
        "notes": hardware_notes(context),
        "code_version": code_version(),
        "created_at": utcnow().isoformat(),
        **built.manifest,
    }


def hardware_notes(context: RunContext) -> list[str]:
    """What the hardware changed about the request (QLoRA falls back to LoRA without CUDA+bnb)."""
    notes = list(context.hardware.notes)
    settings = context.settings
    if settings.options.qlora and settings.method != "lora":
        notes.append(f"qlora applies to method lora only; ignored for {settings.method}")
    elif settings.options.qlora and not context.hardware.qlora:
        notes.append(f"qlora requested; no CUDA with bitsandbytes on {context.hardware.device}: trained LoRA")
    return notes


def finish_variant(
    context: RunContext,
    built: Built,
    manifest: dict[str, Any],
    directory: Path,
    val: list[Example],
    train_seconds: float,
) -> TrainedCandidate:
    """Score, size and describe a saved variant; write its manifest and model card."""
    options = context.settings.options
    student = student_for(manifest, built.model, built.tokenizer)
    metrics = validation_metrics(
        student, val, context.workload.task, options.val_examples, options.postprocess.measure_examples
    )
    curve = loss_curve(built.log_history)
    metrics["train_loss_last"] = curve[-1]["loss"] if curve else None
    manifest.update(
        params=count_parameters(built.model),
        train_seconds=round(train_seconds, 3),
        tokens_per_second=round(built.tokens_per_second, 2),
        metrics=metrics,
        loss_curve=curve,
    )
    write_manifest(directory, manifest)
    if context.bundle is not None:
        write_bundle(directory, context.bundle, input_settings(manifest))
    manifest["size_bytes"] = directory_size(directory, exclude=("README.md",))
    write_manifest(directory, manifest)
    keep = options.postprocess.keep
    return TrainedCandidate(
        name=manifest["name"],
        model_id=manifest["model_id"],
        path=directory,
        kind=manifest["kind"],
        method=manifest["method"],
        base=manifest["base"],
        variant=manifest["variant"],
        params=manifest["params"],
        size_bytes=manifest["size_bytes"],
        train_seconds=train_seconds,
        tokens_per_second=built.tokens_per_second,
        metrics=metrics,
        resumed_from_step=built.resumed_from_step,
        kept=keep is None or manifest["variant"] in keep,
        code_version=manifest["code_version"],
        loss_curve=curve,
        fit=fit_summary(manifest.get("fit"), manifest.get("learning_curve")),
    )


def input_settings(manifest: dict[str, Any]) -> dict[str, Any]:
    """How the student reads its input: kept in the bundle for anyone serving it elsewhere."""
    from flywheel.train.kinds import get_kind

    side = manifest.get("truncation_side") or get_kind(manifest["kind"]).truncation_side
    return {"truncation_side": side, "max_length": manifest.get("max_seq_length")}


def make_variants(
    context: RunContext, built: Built, base: TrainedCandidate, train: list[Example], val: list[Example]
) -> list[TrainedCandidate]:
    options = context.settings.options.postprocess
    variants = []
    current, seconds = built, base.train_seconds
    if options.prune and not _is_adapter(built.model):
        started = time.monotonic()
        current = prune_and_heal(context, built, train)
        seconds += time.monotonic() - started
        directory = context.artifact_dir / "pruned"
        variants.append(save_variant(context, current, "pruned", directory, val, seconds))
    if options.quantize and not _is_adapter(current.model):
        variants.append(save_int8_variant(context, current, val, seconds))
    return variants


def _is_adapter(model: Any) -> bool:
    from peft import PeftModel

    return isinstance(model, PeftModel)


def prune_and_heal(context: RunContext, built: Built, train: list[Example]) -> Built:
    """Drop layers from a copy of the model, then a short full fine-tune to recover."""
    options = context.settings.options.postprocess
    model = copy.deepcopy(built.model)
    total = len(decoder_layers(model))
    dropped = layers_to_drop(total, options.prune)
    drop_layers(model, dropped)
    heal_settings = context.settings.model_copy(update={"method": "full"})
    heal_settings.options = heal_settings.options.model_copy(update={"max_steps": options.heal_steps})
    if options.heal_steps > 0:
        model = heal(context, heal_settings, model, built, train)
    manifest = {**built.manifest, "pruned_layers": dropped, "heal_steps": options.heal_steps}
    return Built(model, built.tokenizer, built.log_history, built.tokens_per_second, None, manifest)


def heal(context: RunContext, settings: Any, model: Any, built: Built, train: list[Example]) -> Any:
    run_dir = context.run_dir / "heal"
    common = {"seed": context.seed, "progress": None, "resume": True}
    tokenizer, manifest = built.tokenizer, built.manifest
    if settings.kind == "encoder-classifier":
        from flywheel.train.encoder import fit_encoder

        return fit_encoder(model, tokenizer, train, settings, context.hardware, run_dir, **common)[0].model
    from flywheel.train.causal import token_rows
    from flywheel.train.sft import fit_sft

    rows, _ = token_rows(
        tokenizer, train, context.workload.task, manifest.get("tools_rendering"),
        settings.max_seq_length, int(manifest["max_new_tokens"]),
    )  # fmt: skip
    return fit_sft(
        model, tokenizer, rows, settings, context.hardware, run_dir, loss="completion", **common
    ).model


def save_int8_variant(
    context: RunContext, built: Built, val: list[Example], train_seconds: float
) -> TrainedCandidate:
    directory = context.artifact_dir / "int8"
    quantized = quantize_int8(copy.deepcopy(built.model))
    save_int8(quantized, built.tokenizer, directory, INT8_WEIGHTS)
    name = f"{context.settings.name}+int8"
    model_id = f"{context.workload.id}/{name}/{context.version}"
    int8 = Built(quantized, built.tokenizer, built.log_history, built.tokens_per_second, None, built.manifest)
    manifest = base_manifest(context, int8, "int8", model_id, name, "int8-dynamic")
    return finish_variant(context, int8, manifest, directory, val, train_seconds)
