"""Fit an encoder-classifier to its data: choose the input length, search the learning rate with early
stopping on val within a time budget, and (when cheap) train on nested fractions of train for the
learning curve behind the data-need estimate (flywheel.evaluate.data_need).

The report this returns lands in the manifest (`fit`, `learning_curve`), the model card and the train
stage's summary, so what was chosen, and why, is on record next to the model.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.records import Example
from flywheel.train.config import TrainSettings
from flywheel.train.fitting import (
    MAX_VAL_FOR_STOPPING,
    Clock,
    FitPlan,
    best_val,
    budget_seconds,
    choose_max_length,
    fit_clock,
    model_length_limit,
    plan_fit,
    token_lengths,
)
from flywheel.train.formatting import classifier_text, example_label
from flywheel.train.hardware import Hardware
from flywheel.train.sft import FitResult, Progress

# Nested fractions of train for the learning curve (the full set is the fifth point): spaced about
# evenly in log n (ratio ~1.4) so no single small-data point decides the fitted ceiling.
CURVE_FRACTIONS = (0.25, 0.35, 0.5, 0.7)
CURVE_BUDGET_SHARE = 1.0  # the learning curve may take at most this share of options.fit_budget_s
CURVE_SLACK = 1.2  # each point may take this much more time per record than the chosen trial did
CURVE_MAX_TRAIN = 5000  # above this, the learning curve is off unless options.learning_curve is set


@dataclass
class SearchResult:
    model: Any
    tokenizer: Any
    fit: FitResult
    skipped: int
    report: dict[str, Any] = field(default_factory=dict)
    curve: dict[str, Any] | None = None


@dataclass
class _Run:
    """Everything one search shares."""

    settings: TrainSettings
    labels: list[str]
    hardware: Hardware
    run_dir: Path
    seed: int
    progress: Progress | None
    resume: bool
    val: list[Example]
    plan: FitPlan
    clock: Clock  # the budget's clock (fit_clock): compute seconds, not wall time


def fit_classifier(
    settings: TrainSettings,
    labels: list[str],
    train: list[Example],
    val: list[Example],
    hardware: Hardware,
    run_dir: Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    resume: bool = True,
) -> SearchResult:
    """The best of the planned trials (by val score), with what was chosen and why."""
    from flywheel.train.encoder import load_encoder

    clock = fit_clock(hardware)
    started, wall_started = clock(), time.monotonic()
    model, tokenizer = load_encoder(settings, labels)
    explicit = None if "max_seq_length" in settings.auto else settings.max_seq_length
    lengths = token_lengths(tokenizer, [classifier_text(e) for e in train])
    limit = model_length_limit(tokenizer, model.config)
    length = choose_max_length(lengths, limit, explicit, tokenizer.truncation_side)
    settings = settings.model_copy(update={"max_seq_length": length.max_length})
    stop_val = [e for e in val if example_label(e) in set(labels)][:MAX_VAL_FOR_STOPPING]
    plan = plan_fit(settings, len(train), len(stop_val))
    run = _Run(settings, labels, hardware, run_dir, seed, progress, resume, stop_val, plan, clock)
    best, trials = _search(run, train, started + budget_seconds(plan), first=(model, tokenizer))
    report = {
        "max_length": length.as_dict(),
        "plan": plan.as_dict(),
        "trials": trials,
        "chosen": next(t for t in trials if t.get("chosen")),
        "seconds": round(clock() - started, 1),
        "wall_seconds": round(time.monotonic() - wall_started, 1),
    }
    if length.warning:
        report["warnings"] = [length.warning]
    curve = None
    if _curve_wanted(settings, len(train), plan):
        full_hits = val_hits(best[0].model, best[1], run.val, labels, settings.max_seq_length)
        curve = learning_curve(run, train, report["chosen"], full_hits)
    return SearchResult(best[0].model, best[1], best[0], best[2], report, curve)


def _search(
    run: _Run, train: list[Example], deadline: float, first: tuple[Any, Any]
) -> tuple[tuple[FitResult, Any, int], list[dict[str, Any]]]:
    """One trial per planned learning rate while the budget lasts (`deadline` on `run.clock`); the
    best val score wins."""
    from flywheel.train.encoder import fit_encoder, load_encoder

    best: tuple[FitResult, Any, int] | None = None
    best_score, trials, last_seconds = float("-inf"), [], 0.0
    rates = run.plan.learning_rates
    for index, rate in enumerate(rates):
        begun = run.clock()
        if index and begun + last_seconds / 4 > deadline:
            trials.append({"learning_rate": rate, "skipped": "time budget"})
            continue
        # An equal share of what is left: a trial that stops early leaves its time to the next.
        trial_deadline = begun + (deadline - begun) / (len(rates) - index)
        model, tokenizer = first if index == 0 else load_encoder(run.settings, run.labels)
        settings = run.settings.model_copy(update={"epochs": run.plan.epochs, "learning_rate": rate})
        result, skipped = fit_encoder(
            model, tokenizer, train, settings, run.hardware, run.run_dir / f"lr-{rate:.0e}",
            seed=run.seed, progress=run.progress, resume=run.resume, val=run.val, plan=run.plan,
            deadline=trial_deadline, clock=run.clock,
        )  # fmt: skip
        last_seconds = run.clock() - begun
        val = best_val(result.log_history)
        trial = {"learning_rate": rate, "seconds": round(last_seconds, 1), "steps": result.global_step}
        trial.update({"val": val} if val else {})
        trials.append(trial)
        score = _trial_score(val)
        if best is None or score > best_score:
            best, best_score = (result, tokenizer, skipped), score
            for other in trials:
                other.pop("chosen", None)
            trial["chosen"] = True
    assert best is not None
    return best, trials


def _trial_score(val: dict[str, Any] | None) -> float:
    if not val or val.get("accuracy") is None:
        return float("-inf")
    return float(val["accuracy"]) - 1e-3 * float(val.get("loss") or 0.0)


def _curve_wanted(settings: TrainSettings, n_train: int, plan: FitPlan) -> bool:
    wanted = settings.options.learning_curve
    if wanted is None:
        wanted = n_train <= CURVE_MAX_TRAIN and settings.options.max_steps <= 0
    return bool(wanted) and plan.early_stopping


def nested_subset(train: list[Example], fraction: float, seed: int) -> list[Example]:
    """The first `fraction` of one seeded shuffle: smaller fractions are subsets of larger ones."""
    order = list(range(len(train)))
    random.Random(seed).shuffle(order)
    return [train[i] for i in sorted(order[: max(1, round(fraction * len(train)))])]


def learning_curve(run: _Run, train: list[Example], chosen: dict[str, Any], full_hits: str) -> dict[str, Any]:
    """Val agreement of students trained on nested fractions of train with the chosen learning rate
    and at most the chosen trial's epochs, with which val examples each got right (`hits`, the
    bootstrap in flywheel.evaluate.data_need resamples them jointly)."""
    from flywheel.train.encoder import fit_encoder, load_encoder

    val = chosen.get("val") or {}
    epochs = min(run.plan.epochs, float(val.get("epochs_run") or run.plan.epochs))
    settings = run.settings.model_copy(update={"epochs": epochs, "learning_rate": chosen["learning_rate"]})
    # The same time per record as the chosen trial (with slack), within CURVE_BUDGET_SHARE of the budget.
    seconds = float(chosen.get("seconds") or 0.0) * CURVE_SLACK * sum(CURVE_FRACTIONS)
    seconds = min(seconds or float("inf"), budget_seconds(run.plan) * CURVE_BUDGET_SHARE)
    deadlines = _shares(run.clock(), seconds, CURVE_FRACTIONS)
    points = []
    for fraction, deadline in zip(CURVE_FRACTIONS, deadlines, strict=True):
        subset = nested_subset(train, fraction, run.seed)
        model, tokenizer = load_encoder(settings, run.labels)
        result, _skipped = fit_encoder(
            model, tokenizer, subset, settings, run.hardware, run.run_dir / f"curve-{fraction:g}",
            seed=run.seed, progress=None, resume=run.resume, val=run.val, plan=run.plan, deadline=deadline,
            clock=run.clock,
        )  # fmt: skip
        if best_val(result.log_history) is not None:
            hits = val_hits(result.model, tokenizer, run.val, run.labels, settings.max_seq_length)
            points.append(_point(len(subset), hits))
    if val.get("accuracy") is not None:
        points.append(_point(len(train), full_hits))
    return {"metric": "val agreement with the teacher", "val_examples": len(run.val), "points": points}


def val_hits(model: Any, tokenizer: Any, val: list[Example], labels: list[str], max_length: int) -> str:
    """'1'/'0' per val example: whether `model` predicts its label (the model's best epoch)."""
    import torch

    index = dict(model.config.label2id) or {label: i for i, label in enumerate(labels)}
    was_training = model.training
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(val), 64):
            batch = val[start : start + 64]
            encoded = tokenizer(
                [classifier_text(e) for e in batch], truncation=True, max_length=max_length,
                padding=True, return_tensors="pt",
            ).to(model.device)  # fmt: skip
            predicted = model(**encoded).logits.argmax(-1).tolist()
            out += [
                "1" if p == index.get(example_label(e)) else "0"
                for p, e in zip(predicted, batch, strict=True)
            ]
    model.train(was_training)
    return "".join(out)


def _shares(start: float, seconds: float, fractions: tuple[float, ...]) -> list[float]:
    """Cumulative deadlines that split `seconds` in proportion to `fractions`."""
    total, spent, out = sum(fractions), 0.0, []
    for fraction in fractions:
        spent += seconds * fraction / total
        out.append(start + spent)
    return out


def _point(n: int, hits: str) -> dict[str, Any]:
    correct, total = hits.count("1"), max(1, len(hits))
    return {"n": n, "score": round(correct / total, 4), "correct": correct, "total": len(hits), "hits": hits}


def fit_summary(report: dict[str, Any] | None, curve: dict[str, Any] | None) -> dict[str, Any] | None:
    """The train stage's one-look view of a fit report: what was chosen, and why."""
    if not report:
        return None
    chosen, length = report.get("chosen") or {}, report.get("max_length") or {}
    val = chosen.get("val") or {}
    return {
        "learning_rate": chosen.get("learning_rate"),
        "epochs_cap": (report.get("plan") or {}).get("epochs"),
        "best_epoch": val.get("epoch"),
        "epochs_run": val.get("epochs_run"),
        "val_accuracy": val.get("accuracy"),
        "max_length": length.get("max_length"),
        "max_length_source": length.get("source"),
        "truncated": f"{length.get('truncated', 0)}/{length.get('total', 0)}",
        "trials": len([t for t in report.get("trials", []) if "skipped" not in t]),
        "reasons": (report.get("plan") or {}).get("reasons", []),
        "warnings": report.get("warnings", []),
        "learning_curve": [[p["n"], p["score"]] for p in (curve or {}).get("points", [])],
    }
