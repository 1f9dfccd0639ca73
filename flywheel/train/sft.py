"""Supervised fine-tuning of causal students with TRL's SFTTrainer: full, LoRA, IA3, prompt tuning,
or only the top k layers; checkpoints for resume, loss logged every step, progress reported.

Rows are TRL conversational rows (see `formatting`): `messages` for assistant-only loss through the
chat template's generation markers, or `prompt`/`completion` for completion-only loss.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.train.config import TrainSettings
from flywheel.train.hardware import Hardware, precision_args

Progress = Callable[[int, int], None]


@dataclass
class FitResult:
    """What one training run produced, beyond the weights left on the model object."""

    model: Any
    log_history: list[dict[str, Any]]
    global_step: int
    train_runtime: float
    tokens_seen: int
    tokens_per_second: float
    resumed_from_step: int | None
    metrics: dict[str, float] = field(default_factory=dict)


def peft_config_for(settings: TrainSettings, task_type: str, model: Any) -> Any | None:
    """The peft config the method asks for; None for full / top-k-layers fine-tuning."""
    options = settings.options
    if settings.method == "lora":
        from peft import LoraConfig

        target = options.target_modules or ("all-linear" if task_type == "CAUSAL_LM" else None)
        modules_to_save = options.modules_to_save
        if modules_to_save is None and settings.kind == "scratch":
            # A random base has nothing worth adapting around: embeddings and head must learn too.
            modules_to_save = ["embed_tokens", "lm_head"]
        return LoraConfig(
            task_type=task_type,
            r=options.lora_r,
            lora_alpha=options.lora_alpha,
            lora_dropout=options.lora_dropout,
            target_modules=target,
            modules_to_save=modules_to_save,
        )
    if settings.method == "ia3":
        from peft import IA3Config

        return IA3Config(task_type=task_type, target_modules=options.target_modules)
    if settings.method == "prompt-tuning":
        from peft import PromptTuningConfig

        return PromptTuningConfig(
            task_type=task_type,
            num_virtual_tokens=options.num_virtual_tokens,
            modules_to_save=options.modules_to_save,
        )
    return None


def decoder_layers(model: Any) -> Any:
    """The model's stack of transformer blocks (Llama `model.layers`, BERT `encoder.layer`, ...)."""
    import torch

    count = getattr(model.config, "num_hidden_layers", None)
    for name, module in model.named_modules():
        if (
            isinstance(module, torch.nn.ModuleList)
            and len(module) == count
            and name.endswith(("layers", "layer", "h"))
        ):
            return module
    raise ValueError(f"cannot find the {count} transformer layers of {type(model).__name__}")


def train_only_top_layers(model: Any, k: int, head_names: tuple[str, ...] = ("lm_head", "norm")) -> list[str]:
    """Freeze everything except the top k blocks and the output head; returns the trainable names."""
    layers = decoder_layers(model)
    for param in model.parameters():
        param.requires_grad_(False)
    for block in list(layers)[-k:]:
        for param in block.parameters():
            param.requires_grad_(True)
    top_level = dict(model.named_modules())
    for name, module in top_level.items():
        if name.split(".")[-1] in head_names and name.count(".") <= 1:
            for param in module.parameters():
                param.requires_grad_(True)
    return [name for name, p in model.named_parameters() if p.requires_grad]


class StepReporter:
    """A TrainerCallback that turns steps into progress(done, total) calls."""

    def __new__(cls, progress: Progress | None) -> Any:
        from transformers import TrainerCallback

        class _Reporter(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if progress is not None:
                    progress(state.global_step, state.max_steps)

        return _Reporter()


class ThroughputMeter:
    """A TrainerCallback timing this train() call's loop and counting its (non-padding) tokens."""

    def __new__(cls) -> Any:
        from transformers import TrainerCallback

        class _Meter(TrainerCallback):
            tokens_start = 0
            tokens_end = 0
            started = 0.0
            seconds = 0.0

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.tokens_start = int(state.num_input_tokens_seen or 0)
                self.started = time.perf_counter()

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.seconds = time.perf_counter() - self.started
                self.tokens_end = int(state.num_input_tokens_seen or 0)

        return _Meter()


def quiet_trainer(trainer: Any) -> None:
    """No per-step prints or tqdm bars on stdout: progress goes through the `progress` callback."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers/datasets progress bars and info logs for the duration (then restore)."""
    import datasets
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    datasets_bars = datasets.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if datasets_bars:
            datasets.enable_progress_bars()


def training_arguments(
    settings: TrainSettings, hardware: Hardware, run_dir: Path, seed: int, **extra: Any
) -> dict[str, Any]:
    """Arguments shared by every trainer flywheel runs (SFT, GKD, encoder)."""
    options = settings.options
    return {
        "output_dir": str(run_dir),
        "num_train_epochs": settings.epochs,
        "max_steps": options.max_steps,
        "learning_rate": settings.learning_rate,
        "per_device_train_batch_size": settings.batch_size,
        "per_device_eval_batch_size": settings.batch_size,
        "gradient_accumulation_steps": options.gradient_accumulation_steps,
        "warmup_steps": options.warmup_ratio,
        "weight_decay": options.weight_decay,
        "lr_scheduler_type": options.lr_scheduler,
        checkpointing_field(): options.gradient_checkpointing,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": options.save_steps,
        "save_total_limit": 2,
        "eval_strategy": "no",
        "report_to": [],
        "disable_tqdm": True,
        "seed": seed,
        "data_seed": seed,
        "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        **precision_args(hardware),
        **extra,
    }


def checkpointing_field() -> str:
    """transformers 5.x renamed gradient_checkpointing (the old name warns and goes away in v6)."""
    from transformers import TrainingArguments

    fields = TrainingArguments.__dataclass_fields__
    return "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"


def sft_config(settings: TrainSettings, hardware: Hardware, run_dir: Path, seed: int, loss: str) -> Any:
    from trl import SFTConfig

    arguments = training_arguments(settings, hardware, run_dir, seed)
    if settings.options.packing and not hardware.cuda:
        # Padding-free packing flattens the whole batch into one sequence; without FlashAttention's
        # varlen kernels, SDPA then attends over (batch x max_length)^2 under a block mask (measured
        # 2.3x slower than no packing). One packed row per micro-batch keeps attention at max_length^2.
        arguments["gradient_accumulation_steps"] *= arguments["per_device_train_batch_size"]
        arguments["per_device_train_batch_size"] = 1
    return SFTConfig(
        **arguments,
        max_length=settings.max_seq_length,
        packing=settings.options.packing,
        assistant_only_loss=loss == "assistant",
        dataset_num_proc=None,
    )


def last_checkpoint(run_dir: Path) -> str | None:
    """The newest complete checkpoint: a kill during a save leaves weights without trainer state
    (written last), and resuming from that one would fail on every re-run."""
    if not run_dir.is_dir():
        return None
    complete = [
        d for d in run_dir.glob("checkpoint-*")
        if d.name.split("-")[-1].isdigit() and (d / "trainer_state.json").is_file()
    ]  # fmt: skip
    return str(max(complete, key=lambda d: int(d.name.split("-")[-1]))) if complete else None


def run_trainer(trainer: Any, run_dir: Path, resume: bool) -> FitResult:
    """Train (from the last checkpoint when asked and present) and collect what happened."""
    checkpoint = last_checkpoint(run_dir) if resume else None
    resumed_from = int(Path(checkpoint).name.split("-")[-1]) if checkpoint else None
    meter = ThroughputMeter()
    trainer.add_callback(meter)
    output = trainer.train(resume_from_checkpoint=checkpoint)
    tokens = meter.tokens_end - meter.tokens_start
    return FitResult(
        model=trainer.model,
        log_history=list(trainer.state.log_history),
        global_step=trainer.state.global_step,
        train_runtime=meter.seconds,
        tokens_seen=tokens,
        tokens_per_second=tokens / meter.seconds if meter.seconds > 0 else 0.0,
        resumed_from_step=resumed_from,
        metrics={"train_loss": float(output.metrics.get("train_loss", float("nan")))},
    )


def fit_sft(
    model: Any,
    tokenizer: Any,
    train_rows: list[dict[str, Any]],
    settings: TrainSettings,
    hardware: Hardware,
    run_dir: Path,
    *,
    loss: str,
    seed: int = 0,
    progress: Progress | None = None,
    resume: bool = True,
) -> FitResult:
    """SFT `model` on `train_rows`; adapters and layer freezing follow `settings.method`."""
    from datasets import Dataset
    from trl import SFTTrainer

    if settings.method == "top-k-layers":
        train_only_top_layers(model, settings.options.top_k_layers)
    trainer = SFTTrainer(
        model=model,
        args=sft_config(settings, hardware, run_dir, seed, loss),
        train_dataset=Dataset.from_list(train_rows),
        processing_class=tokenizer,
        peft_config=peft_config_for(settings, "CAUSAL_LM", model),
        callbacks=[StepReporter(progress)],
    )
    quiet_trainer(trainer)
    return run_trainer(trainer, run_dir, resume)
