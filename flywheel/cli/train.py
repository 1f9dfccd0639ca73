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
    as_json: bool = JsonOpt,
) -> None:
    """Train student candidates on the latest dataset snapshot and register them."""
    from flywheel.train import train_workload
    from flywheel.train.data import load_training_data

    cli = state(ctx)
    with guarded(as_json):
        config = cli.require_config()
        workload_config = config.workload(workload)
        warehouse = cli.warehouse()
        try:
            data = load_training_data(warehouse, workload, snapshot)
        except LookupError as exc:
            fail(as_json, str(exc))
        if not data.train:
            fail(as_json, f"snapshot {data.snapshot_id} of {workload} has no training examples")
        with training_bars(enabled=not as_json) as progress:
            trained = _train(
                train_workload,
                workload_config,
                data.train,
                data.val,
                out_dir=cli.home / "models",
                snapshot_id=data.snapshot_id,
                warehouse=warehouse,
                candidates=candidate or None,
                seed=seed,
                progress=progress,
                resume=resume,
                teacher_logprobs=data.teacher_logprobs,
                teacher=data.teacher,
                as_json=as_json,
            )
    models = [model for item in trained for model in item.flatten()]
    payload = {
        "workload": workload,
        "snapshot_id": data.snapshot_id,
        "train_examples": len(data.train),
        "val_examples": len(data.val),
        "candidates": [model.as_dict() for model in models],
    }
    emit(as_json, payload, lambda: _render(payload))


def _train(train_workload: Callable[..., Any], *args: Any, as_json: bool, **kwargs: Any) -> Any:
    """Training errors that are the data's or config's fault end in one message, not a traceback."""
    try:
        return train_workload(*args, **kwargs)
    except ValueError as exc:
        fail(as_json, str(exc))


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
