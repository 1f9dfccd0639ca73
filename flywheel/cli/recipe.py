"""`flywheel recipe` and `flywheel recipe-score`: public datasets run as if they were your traffic.

flywheel recipe banking77 --out runs/banking77 [--data DIR] [--limit N] [--noise 0.1] [--seed 0]
flywheel --config runs/banking77/flywheel.yaml run -w banking77
flywheel --config runs/banking77/flywheel.yaml recipe-score banking77 [--data DIR]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from flywheel.cli.app import JsonOpt, Table, app, emit, fail, guarded, out, state
from flywheel.hardware_profiles import DEFAULT_PROFILE

NameArg = typer.Argument(..., help="Recipe: banking77 | snips | tau-retail")
DataOpt = typer.Option(None, "--data", help="Dataset directory (default: <repo>/../shared/data/<recipe>)")


@app.command()
def recipe(
    name: str = NameArg,
    out_dir: Path = typer.Option(..., "--out", help="Where flywheel.yaml (and derived traffic) go"),
    data: Path | None = DataOpt,
    limit: int | None = typer.Option(None, "--limit", help="Use a seeded random subset of N rows (tasks)"),
    noise: float = typer.Option(0.0, "--noise", help="Replace this share of answers by wrong ones"),
    seed: int = typer.Option(0, "--seed"),
    epochs: float | None = typer.Option(None, "--epochs", help="Override the students' epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Override the students' batch size"),
    teacher_url: str | None = typer.Option(None, "--teacher-url", help="OpenAI-compatible base_url"),
    teacher_model: str | None = typer.Option(None, "--teacher-model"),
    k_votes: int | None = typer.Option(None, "--k-votes", help="Teacher samples per item (relabel)"),
    api_key_env: str | None = typer.Option(None, "--api-key-env", help="Env var holding the teacher key"),
    as_json: bool = JsonOpt,
) -> None:
    """Write a workload recipe's flywheel.yaml for a public dataset; then `flywheel run` it."""
    from flywheel.recipes import RecipeDataMissing, RecipeOptions, write_recipe

    with guarded(as_json):
        try:
            options = RecipeOptions(
                noise=noise, limit=limit, seed=seed, epochs=epochs, batch_size=batch_size,
                teacher_url=teacher_url, teacher_model=teacher_model, k_votes=k_votes,
                api_key_env=api_key_env,
            )  # fmt: skip
            written = write_recipe(name, data, out_dir, options)
        except RecipeDataMissing as exc:
            fail(as_json, str(exc))
        except ValueError as exc:
            fail(as_json, str(exc), code=2)
    payload = written.as_dict()
    emit(as_json, payload, lambda: _render_written(payload))


def _render_written(payload: dict[str, Any]) -> None:
    out.print(f"wrote {payload['config_path']}")
    out.print(f"traffic: {', '.join(payload['traffic'])}")
    out.print(f"held out: {len(payload['held_out'])} file(s), e.g. {payload['held_out'][0]}")
    if payload["notes"]:
        out.print(f"notes: {payload['notes']}")
    out.print(f"next: {payload['run']}")
    score = f"flywheel --config {payload['config_path']} recipe-score {payload['recipe']}"
    out.print(f"then: {score}")


@app.command("recipe-score")
def recipe_score(
    ctx: typer.Context,
    name: str = NameArg,
    data: Path | None = DataOpt,
    model: str | None = typer.Option(None, "--model", help="A model id (default: the champion)"),
    hardware: str = typer.Option(DEFAULT_PROFILE, "--hardware", help="Serving hardware profile"),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples for the 95% CIs"),
    as_json: bool = JsonOpt,
) -> None:
    """Score the workload's promoted student on the recipe's held-out gold, with cost vs the teacher."""
    from flywheel.recipes import RecipeDataMissing, default_data
    from flywheel.recipes.scoring import score_on_gold
    from flywheel.registry import RegistryError

    cli = state(ctx)
    with guarded(as_json):
        config = cli.require_config()
        try:
            result = score_on_gold(
                config.source_file or str(cli.config_path), name, data or default_data(name),
                home=cli.home, model_id=model, hardware=hardware, resamples=resamples,
            )  # fmt: skip
        except (RecipeDataMissing, RegistryError) as exc:
            fail(as_json, str(exc))
        except ValueError as exc:
            fail(as_json, str(exc), code=2)
    emit(as_json, result, lambda: _render_score(result))


def _render_score(result: dict[str, Any]) -> None:
    student, teacher = result["student"], result["teacher"]
    metrics = list(student["metrics"])
    table = Table(title=f"{result['workload']} on held-out gold ({result['n']:,} examples)")
    for column in ("model", *metrics, "latency ms", "$/1k requests"):
        table.add_column(column)
    for name, summary in ((result["model_id"], student), (f"teacher {teacher['model']}", teacher)):
        values = [_value(summary["metrics"].get(m)) for m in metrics]
        latency = f"{summary['latency_ms_mean']:.2f}" if summary["latency_ms_mean"] else "-"
        cost = "-" if summary["cost_per_1k"] is None else f"{summary['cost_per_1k']:.6f}"
        table.add_row(name, *values, latency, cost)
    served = result.get("as_served")
    if served:
        cost = "-" if served["cost_per_1k"] is None else f"{served['cost_per_1k']:.6f}"
        label = f"as served ({served['coverage']:.0%} student)"
        table.add_row(label, *[_value(served["metrics"].get(m)) for m in metrics], "-", cost)
    out.print(table)
    if "slot_f1" in student:
        precision, recall = student["slot_precision"], student["slot_recall"]
        out.print(f"slot F1 {student['slot_f1']:.4f} (precision {precision:.4f}, recall {recall:.4f}), "
                  f"intent accuracy {student['intent_accuracy']:.4f}")  # fmt: skip
    if result["savings_pct"] is not None:
        out.print(f"student is {result['savings_pct']:.2%} cheaper per request than the teacher")
    if served and served["savings_pct"] is not None:
        out.print(f"as served (partial promotion: the student answers {served['coverage']:.1%} of these "
                  f"requests, the teacher the rest): {served['savings_pct']:.2%} cheaper")  # fmt: skip
    if not result["promoted"]:
        out.print(f"note: {result['model_id']} is not the promoted champion")


def _value(triple: list[float | None] | None) -> str:
    if not triple or triple[0] is None:
        return "-"
    value, low, high = triple
    return f"{value:.4f}" if low is None else f"{value:.4f} ({low:.3f}-{high:.3f})"
