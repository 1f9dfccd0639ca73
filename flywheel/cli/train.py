"""`flywheel train`: distil the teacher into the workload's student candidates."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flywheel.cli.app import JsonOpt, Table, app, emit, err, fail, guarded, out, state


@app.command()
def train(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id from the config"),
    candidate: list[str] = typer.Option(
        None, "--candidate", "-c", help="Train only this student (repeatable)"
    ),
    snapshot: str | None = typer.Option(None, "--snapshot", help="Dataset snapshot id (default: latest)"),
    seed: int = typer.Option(0, "--seed"),
    resume: bool = typer.Option(True, "--resume/--no-resume", help="Continue an interrupted run"),
    force: bool = typer.Option(False, "--force", help="Retrain students already trained on this snapshot"),
    as_json: bool = JsonOpt,
) -> None:
    """Train student candidates on the latest dataset snapshot and register them (the run's train stage)."""
    from flywheel.loop import Loop, train_stage

    cli = state(ctx)
    with guarded(as_json):
        config = cli.require_config()
        config.workload(workload)
        loop = Loop(config, cli.home, cli.warehouse(), cli.prices())
        with training_bars(enabled=not as_json) as progress:
            try:
                result = train_stage(
                    loop, workload, candidate or None, force,
                    snapshot_id=snapshot, seed=seed, resume=resume, progress=progress,
                )  # fmt: skip
            except (LookupError, ValueError) as exc:  # the data's or config's fault: one message
                fail(as_json, str(exc))
        if not result["train_examples"]:
            fail(as_json, f"snapshot {result['snapshot_id']} of {workload} has no training examples")
    payload = {"workload": workload} | result
    emit(as_json, payload, lambda: _render(payload))


@contextmanager
def training_bars(enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """One rich bar per candidate on stderr (terminals only)."""
    if not enabled or not err.is_terminal:
        yield lambda name, done, total: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True) as bars:
        tasks: dict[str, Any] = {}

        def update(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bars.add_task(f"training {name}", total=total)
            bars.update(tasks[name], completed=done, total=total)

        yield update


def _render(payload: dict[str, Any]) -> None:
    table = Table(title=f"students for {payload['workload']} (snapshot {payload['snapshot_id']})")
    for column in (
        "candidate",
        "variant",
        "params",
        "size MB",
        "train s",
        "train tok/s",
        "val agree",
        "gen tok/s",
    ):
        table.add_column(column, justify="left" if column in ("candidate", "variant") else "right")
    for model in payload["candidates"]:
        metrics = model["metrics"]
        agree = metrics.get("val_exact_match")
        table.add_row(
            model["name"],
            model["variant"],
            f"{model['params']:,}",
            f"{model['size_bytes'] / 1e6:.1f}",
            f"{model['train_seconds']:.0f}",
            f"{model['tokens_per_second']:.0f}",
            "-" if agree is None else f"{agree:.3f}",
            f"{metrics.get('generate_tokens_per_second', 0):.0f}",
        )
    out.print(table)
    if payload.get("skipped"):
        out.print(
            f"already trained on this snapshot: {', '.join(payload['skipped'])} (`--force` retrains)",
            highlight=False,
        )
    for model in payload["candidates"]:
        out.print(f"{model['model_id']}  ->  {model['path']}", highlight=False)
        fit = model.get("fit") or {}
        if fit.get("learning_rate") is not None:
            out.print(
                f"  fit: lr {fit['learning_rate']}, best val epoch {fit.get('best_epoch')} of "
                f"{fit.get('epochs_run')}, max length {fit.get('max_length')} "
                f"({fit.get('max_length_source')}, {fit.get('truncated')} truncated)",
                highlight=False,
            )
        for warning in fit.get("warnings") or []:
            err.print(f"  warning: {warning}", highlight=False)
