"""Choosing the input length, the epoch/learning-rate plan and the best epoch (no training here)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np

from flywheel.config import StudentConfig, WorkloadConfig
from flywheel.records import Example
from flywheel.train.config import resolve_settings
from flywheel.train.fitting import (
    EPOCH_CAP,
    LR_FACTORS,
    NO_VAL_EPOCHS,
    best_val,
    budget_seconds,
    choose_max_length,
    classification_scores,
    fit_callbacks,
    fit_clock,
    plan_fit,
)
from flywheel.train.hardware import Hardware
from flywheel.train.search import fit_summary, nested_subset

WORKLOAD = WorkloadConfig.model_validate({"id": "w", "task": "classification", "labels": ["a", "b"]})


def settings(**fields: object):
    student = StudentConfig.model_validate({"name": "m", "kind": "encoder-classifier", **fields})
    return resolve_settings(student, WORKLOAD)


def test_unset_fields_are_left_to_the_data_and_set_ones_are_kept() -> None:
    assert settings().auto == ["epochs", "learning_rate", "max_seq_length"]
    explicit = settings(epochs=2, learning_rate=5e-5, max_seq_length=64)
    assert explicit.auto == [] and explicit.epochs == 2 and explicit.learning_rate == 5e-5


def test_max_length_is_p95_of_the_inputs_capped_by_the_model() -> None:
    lengths = list(range(1, 101))  # p95 = 95 -> rounded up to 96
    choice = choose_max_length(lengths, limit=512, explicit=None, side="left")
    assert (choice.max_length, choice.p95, choice.truncated, choice.warning) == (96, 95, 4, None)
    assert choose_max_length(lengths, limit=64, explicit=None, side="left").max_length == 64
    assert choose_max_length([3, 4], limit=512, explicit=None, side="left").max_length == 16


def test_an_explicit_length_that_truncates_most_inputs_warns() -> None:
    choice = choose_max_length([300] * 8 + [10] * 2, limit=512, explicit=256, side="left")
    assert choice.source == "config" and choice.max_length == 256 and choice.truncated == 8
    assert choice.warning and "8 of 10" in choice.warning and "left" in choice.warning
    assert choose_max_length([600], limit=512, explicit=1024, side="right").max_length == 512


def test_plan_searches_unset_learning_rate_and_caps_unset_epochs() -> None:
    auto = settings()
    plan = plan_fit(auto, n_train=400, n_val=40)
    assert plan.learning_rates == [float(f"{auto.learning_rate * f:.3g}") for f in LR_FACTORS]
    assert plan.early_stopping and EPOCH_CAP[0] <= plan.epochs <= EPOCH_CAP[1]
    assert plan_fit(auto, n_train=100_000, n_val=40).epochs == EPOCH_CAP[0]
    no_val = plan_fit(auto, n_train=400, n_val=5)
    assert not no_val.early_stopping and no_val.epochs == NO_VAL_EPOCHS
    assert no_val.learning_rates == [auto.learning_rate]


def test_explicit_epochs_and_learning_rate_override_the_search() -> None:
    plan = plan_fit(settings(epochs=2, learning_rate=5e-5), n_train=400, n_val=40)
    assert plan.learning_rates == [5e-5] and plan.epochs == 2 and plan.early_stopping
    steps = plan_fit(settings(options={"max_steps": 7}), n_train=400, n_val=40)
    assert steps.epochs == 3.0  # max_steps set: the epoch count is not planned


def test_the_time_budget_bounds_the_plan_not_an_explicit_schedule() -> None:
    assert plan_fit(settings(), n_train=400, n_val=40).budget_s == 600.0  # the default budget
    explicit = plan_fit(settings(epochs=3), n_train=400, n_val=0)
    assert explicit.budget_s is None and budget_seconds(explicit) == float("inf")
    assert plan_fit(settings(options={"max_steps": 7}), n_train=400, n_val=0).budget_s is None
    capped = plan_fit(settings(epochs=3, options={"fit_budget_s": 90}), n_train=400, n_val=0)
    assert capped.budget_s == 90.0  # a budget set in the config caps even an explicit schedule


def test_val_score_is_accuracy_with_loss_as_tie_break_and_best_epoch_wins() -> None:
    labels = np.array([0, 1, 1, 0])
    sure = classification_scores((np.array([[5.0, 0], [0, 5], [0, 5], [0, 5]]), labels))
    unsure = classification_scores((np.array([[1.0, 0], [0, 1], [0, 1], [0, 1]]), labels))
    assert sure["accuracy"] == unsure["accuracy"] == 0.75
    assert unsure["score"] > sure["score"]  # same accuracy, lower loss on the miss wins
    history = [
        {"loss": 1.0, "step": 1},
        {"eval_score": 0.5, "eval_accuracy": 0.5, "eval_loss": 1.0, "epoch": 1.0},
        {"eval_score": 0.8, "eval_accuracy": 0.8, "eval_loss": 0.5, "epoch": 2.0},
        {"eval_score": 0.7, "eval_accuracy": 0.7, "eval_loss": 0.6, "epoch": 3.0},
    ]
    assert best_val(history) == {"epoch": 2.0, "accuracy": 0.8, "loss": 0.5, "epochs_run": 3.0}
    assert best_val([{"loss": 1.0}]) is None


def test_learning_curve_subsets_are_nested() -> None:
    train = [
        Example(example_id=str(i), workload_id="w", messages=[], target={}, label="a") for i in range(40)
    ]
    quarter = {e.example_id for e in nested_subset(train, 0.25, seed=3)}
    half = {e.example_id for e in nested_subset(train, 0.5, seed=3)}
    assert len(quarter) == 10 and len(half) == 20 and quarter < half


def test_fit_summary_says_what_was_chosen() -> None:
    report = {
        "max_length": {"max_length": 32, "source": "p95 of training inputs", "truncated": 2, "total": 50},
        "plan": {"epochs": 20.0, "reasons": ["why"]},
        "trials": [{"learning_rate": 1e-4}, {"learning_rate": 3e-4, "skipped": "time budget"}],
        "chosen": {"learning_rate": 1e-4, "val": {"epoch": 7.0, "epochs_run": 10.0, "accuracy": 0.9}},
    }
    curve = {"points": [{"n": 10, "score": 0.5}, {"n": 40, "score": 0.9}]}
    summary = fit_summary(report, curve)
    assert summary is not None
    assert summary["best_epoch"] == 7.0 and summary["trials"] == 1 and summary["truncated"] == "2/50"
    assert summary["learning_curve"] == [[10, 0.5], [40, 0.9]]
    assert fit_summary(None, None) is None


def test_the_budget_clock_counts_the_fits_own_compute_not_waiting() -> None:
    """Time the process spends off the CPU (a busy machine, here a sleep) does not spend the budget;
    its own work does, per thread. On a GPU the clock is wall time."""
    one_thread = fit_clock(Hardware(device="cpu", bf16=False, qlora=False, threads=1))
    two_threads = fit_clock(Hardware(device="cpu", bf16=False, qlora=False, threads=2))
    start_one, start_two = one_thread(), two_threads()
    time.sleep(0.4)
    assert one_thread() - start_one < 0.1
    busy_until = time.process_time() + 0.3
    while time.process_time() < busy_until:
        pass
    spent_one, spent_two = one_thread() - start_one, two_threads() - start_two
    assert spent_one >= 0.3
    assert abs(spent_two - spent_one / 2) < 0.02
    assert fit_clock(Hardware(device="cuda", bf16=True, qlora=False, threads=2)) is time.monotonic


def test_training_stops_when_the_budget_clock_passes_the_deadline() -> None:
    readings = iter([1.0, 5.0, 11.0])
    (callback,) = fit_callbacks(plan_fit(settings(), 100, 0), deadline=10.0, clock=lambda: next(readings))
    control = SimpleNamespace(should_training_stop=False)
    for _ in range(2):
        callback.on_step_end(None, None, control)
        assert not control.should_training_stop
    callback.on_step_end(None, None, control)
    assert control.should_training_stop
