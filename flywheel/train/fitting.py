"""How a student is fit to its data: the input length, the epoch/learning-rate plan and early stopping.

- Max length: the config's `max_seq_length` when set; else the 95th percentile of the training inputs'
  token lengths (rounded up to a multiple of 8), capped by the model's position limit. A warning is
  recorded (and logged) when most training inputs are longer than the chosen length.
- Plan: explicit `epochs`, `learning_rate` or `options.max_steps` in the config are used as given.
  Left unset, epochs become a cap (enough optimizer steps for small data, 20 at most) and early
  stopping on the val split keeps the best epoch; the learning rate is searched over the kind's
  default and 3x it. The whole fit shares a time budget (`options.fit_budget_s`).
- The budget counts the fit's own compute, not wall time (`fit_clock`): on CPU, this process's CPU
  seconds divided by its torch threads. Under wall time a busy machine trained less (at load 9-15 a
  600 s budget got 1.6 of 20 epochs) and the same data gave a different model and a data-need curve
  of the load rather than of the data.
- The budget bounds what was left to the plan. Explicit epochs or max_steps run to completion unless
  `fit_budget_s` is set as well: a default wall-clock budget would otherwise cut a configured schedule
  short (mid-decay, at a high learning rate) whenever the machine is busy, so the same config would
  train a different model under load.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from flywheel.train.config import TrainSettings
from flywheel.train.hardware import Hardware

log = logging.getLogger("flywheel.train")

MIN_VAL_FOR_STOPPING = 20  # fewer val examples cannot rank epochs: train the fixed schedule instead
MAX_VAL_FOR_STOPPING = 500  # scoring more every epoch costs time and barely changes the choice
TARGET_STEPS = 1500  # optimizer steps the epoch cap aims for on small data
EPOCH_CAP = (5, 20)  # the epoch cap's bounds when epochs are left to the plan
NO_VAL_EPOCHS = 10.0  # unset epochs and no val split to stop on: the schedule measured to fit MiniLM
PATIENCE = 3  # epochs without a better val score before stopping
LR_FACTORS = (1.0, 3.0)  # learning rates tried when unset: the default and 3x it


@dataclass
class LengthChoice:
    """The max input length a student trains and serves with, and the distribution behind it."""

    max_length: int
    source: str  # "config" | "p95 of training inputs"
    p50: int
    p95: int
    longest: int
    model_limit: int
    truncated: int
    total: int
    warning: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitPlan:
    """What training will try: learning rates, the epoch cap, early stopping and the time budget."""

    learning_rates: list[float]
    epochs: float
    early_stopping: bool
    budget_s: float | None  # None: no time budget (an explicit schedule, see the module docstring)
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_lengths(tokenizer: Any, texts: list[str]) -> list[int]:
    """Untruncated token counts (special tokens included) of `texts`."""
    if not texts:
        return []
    warned = getattr(tokenizer, "deprecation_warnings", {})
    warned["sequence-length-is-longer-than-the-specified-maximum"] = True  # measuring, not encoding
    return [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]


def model_length_limit(tokenizer: Any, model_config: Any) -> int:
    """The longest input the model can take: its position embeddings, or the tokenizer's limit."""
    limits = [
        getattr(model_config, "max_position_embeddings", None),
        getattr(tokenizer, "model_max_length", None),
    ]
    valid = [int(x) for x in limits if isinstance(x, int | float) and 0 < x < 1_000_000]
    return min(valid) if valid else 512


def _percentile(sorted_values: list[int], q: float) -> int:
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


def choose_max_length(lengths: list[int], limit: int, explicit: int | None, side: str) -> LengthChoice:
    """The configured length (capped by the model), else p95 of `lengths` rounded up to 8."""
    ordered = sorted(lengths) or [0]
    p50, p95, longest = _percentile(ordered, 0.5), _percentile(ordered, 0.95), ordered[-1]
    if explicit is not None:
        chosen, source = min(explicit, limit), "config"
    else:
        chosen, source = min(limit, max(16, math.ceil(p95 / 8) * 8)), "p95 of training inputs"
    truncated = sum(length > chosen for length in lengths)
    choice = LengthChoice(chosen, source, p50, p95, longest, limit, truncated, len(lengths))
    if lengths and truncated * 2 > len(lengths):
        choice.warning = (
            f"{truncated} of {len(lengths)} training inputs ({truncated / len(lengths):.0%}) are longer "
            f"than max_length {chosen} and lose tokens from the {side} (p95 {p95}, longest {longest})"
        )
        log.warning("%s", choice.warning)
    return choice


def plan_fit(settings: TrainSettings, n_train: int, n_val: int) -> FitPlan:
    """Explicit settings win; unset epochs/learning rate are planned (see the module docstring)."""
    options = settings.options
    auto = set(settings.auto)
    stopping = n_val >= MIN_VAL_FOR_STOPPING
    reasons = []
    if "learning_rate" in auto and stopping:
        rates = [float(f"{settings.learning_rate * f:.3g}") for f in LR_FACTORS]
        reasons.append(f"learning rate searched over {', '.join(f'{r:.0e}' for r in rates)} (best val score)")
    else:
        rates = [settings.learning_rate]
        why = "set in the config" if "learning_rate" not in auto else "the kind's default (val too small)"
        reasons.append(f"learning rate {settings.learning_rate:.0e}: {why}")
    epochs = settings.epochs
    if "epochs" in auto and options.max_steps <= 0:
        epochs = epoch_cap(n_train, settings) if stopping else NO_VAL_EPOCHS
        reasons.append(
            f"epochs up to {epochs:g} with early stopping (patience {PATIENCE}) on {n_val} val examples"
            if stopping
            else f"{epochs:g} epochs: fewer than {MIN_VAL_FOR_STOPPING} val examples to stop on"
        )
    else:
        reasons.append("epochs/max_steps set in the config" + ("; best val epoch kept" if stopping else ""))
    budget: float | None = float(options.fit_budget_s)
    explicit_schedule = "epochs" not in auto or options.max_steps > 0
    if explicit_schedule and "fit_budget_s" not in options.model_fields_set:
        budget = None
        reasons.append(
            "no time budget: the schedule is set in the config (set options.fit_budget_s to cap it)"
        )
    return FitPlan(rates, epochs, stopping, budget, reasons)


Clock = Callable[[], float]


def fit_clock(hardware: Hardware) -> Clock:
    """Seconds of this fit's own compute, for the time budget: on CPU, the process's CPU seconds per
    torch thread (about wall time on an idle machine, less when other work takes the cores); on a
    GPU, wall time (its work is not CPU time)."""
    if hardware.cuda:
        return time.monotonic
    threads = max(1, hardware.threads)
    return lambda: time.process_time() / threads


def budget_seconds(plan: FitPlan) -> float:
    """The plan's time budget in seconds (inf when it has none)."""
    return float("inf") if plan.budget_s is None else plan.budget_s


def epoch_cap(n_train: int, settings: TrainSettings) -> float:
    """Enough epochs for ~TARGET_STEPS optimizer steps, within EPOCH_CAP."""
    per_step = settings.batch_size * settings.options.gradient_accumulation_steps
    steps_per_epoch = max(1, math.ceil(n_train / per_step))
    return float(min(EPOCH_CAP[1], max(EPOCH_CAP[0], math.ceil(TARGET_STEPS / steps_per_epoch))))


def stopping_arguments(plan: FitPlan) -> dict[str, Any]:
    """TrainingArguments for scoring val every epoch (the best epoch is kept in memory, not on disk:
    a checkpoint per epoch writes the whole model and optimizer each time)."""
    return {"eval_strategy": "epoch"} if plan.early_stopping else {}


def classification_scores(eval_prediction: Any) -> dict[str, float]:
    """Val accuracy, and `score`: accuracy with cross-entropy as the tie-break (lower is better)."""
    import numpy as np

    logits, labels = eval_prediction
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    accuracy = float((logits.argmax(-1) == labels).mean())
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    cross_entropy = float(-log_probs[np.arange(len(labels)), labels].mean())
    return {"accuracy": accuracy, "score": accuracy - 1e-3 * min(cross_entropy, 100.0)}


def fit_callbacks(plan: FitPlan, deadline: float, clock: Clock = time.monotonic) -> list[Any]:
    """Stop when `clock` passes the time budget's deadline; with val, keep the best epoch and stop
    after PATIENCE epochs without a better score. `restore_best` puts the best epoch's weights back
    afterwards. After a resume, the best epoch is tracked from the resumed point on."""
    from transformers import TrainerCallback

    class _Fit(TrainerCallback):
        best = float("-inf")
        weights: dict[str, Any] | None = None
        since_best = 0

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if clock() > deadline:
                control.should_training_stop = True

        def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            score = (kwargs.get("metrics") or {}).get("eval_score")
            model = kwargs.get("model")
            if score is None or model is None:
                return
            if score > self.best:
                self.best, self.since_best = score, 0
                self.weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                self.since_best += 1
                control.should_training_stop = control.should_training_stop or self.since_best >= PATIENCE

    return [_Fit()]


def restore_best(callbacks: list[Any], model: Any) -> None:
    """Load the best val epoch's weights (kept by `fit_callbacks`) into `model`."""
    for callback in callbacks:
        weights = getattr(callback, "weights", None)
        if weights is not None:
            model.load_state_dict(weights)


def best_val(log_history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best epoch's val entry (highest score; the earliest on ties), if val was scored."""
    entries = [e for e in log_history if "eval_score" in e]
    if not entries:
        return None
    best = max(entries, key=lambda e: (e["eval_score"], -e.get("epoch", 0)))
    return {
        "epoch": best.get("epoch"),
        "accuracy": _round(best.get("eval_accuracy")),
        "loss": _round(best.get("eval_loss")),
        "epochs_run": max(e.get("epoch", 0) for e in entries),
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 4)
