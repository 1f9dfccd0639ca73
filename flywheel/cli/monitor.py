"""`flywheel monitor`: how a served workload does lately (traffic, fallbacks, live agreement, feedback)."""

from __future__ import annotations

from typing import Any

import typer

from flywheel.cli.app import JsonOpt, Table, app, emit, guarded, out, state
from flywheel.monitor import DEFAULT_WINDOW_DAYS, monitor_summary

FEEDBACK_KEYS = ("positive", "negative", "corrections")


@app.command()
def monitor(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="The workload"),
    days: float = typer.Option(DEFAULT_WINDOW_DAYS, "--days", min=0.001, help="Window: the last N days"),
    as_json: bool = JsonOpt,
) -> None:
    """Served calls, student share, fallbacks, shadow agreement (with CI vs the gate target), feedback.

    Reads what ingest stored: run `flywheel ingest`/`flywheel run` after serving to bring it up to date.
    """
    cli = state(ctx)
    with guarded(as_json):
        config = cli.require_config()
        cli.sync_served()  # every call served so far counts, ingested or not
        summary = monitor_summary(cli.warehouse(), config.workload(workload), days)
    emit(as_json, summary, lambda: out.print(_table(summary)))


def _table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"{summary['workload_id']} since {summary['since']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    share = summary["student_share"]
    agreement, feedback = summary["shadow_agreement"], summary["feedback"]
    rows = [
        ("champion", summary["champion"] or "- (teacher)"),
        ("served", str(summary["served"])),
        ("student share", "-" if share is None else f"{share:.1%}"),
        ("fallbacks", ", ".join(f"{k}: {v}" for k, v in summary["fallbacks"].items()) or "0"),
        ("shadow pairs", str(summary["shadow_pairs"])),
        (f"agreement ({agreement['metric']})", _agreement(agreement)),
        ("feedback +/-/corrections", "/".join(str(feedback[k]) for k in FEEDBACK_KEYS)),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _agreement(agreement: dict[str, Any]) -> str:
    if agreement["value"] is None:
        return f"- (target {agreement['target']:.2f})"
    return (
        f"{agreement['value']:.3f} [{agreement['ci_low']:.3f}, {agreement['ci_high']:.3f}] "
        f"target {agreement['target']:.2f}"
    )
