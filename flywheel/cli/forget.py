"""`flywheel forget`: delete interactions and everything derived from them (a privacy request)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from flywheel.cli.app import JsonOpt, app, emit, fail, guarded, out, state


@app.command()
def forget(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id"),
    source: str | None = typer.Option(None, "--source", help="Every call ingested from this log file"),
    ids: Path | None = typer.Option(None, "--ids", help="File of interaction ids, one per line"),
    before: str | None = typer.Option(None, "--before", help="Every call logged before this date (ISO)"),
    as_json: bool = JsonOpt,
) -> None:
    """Forget interactions: verdicts, snapshot examples, labels, gold labels, quarantine rows and
    exports derived from them go too; the next `flywheel curate` builds a new snapshot."""
    from flywheel.forget import ForgetRequest, read_ids
    from flywheel.forget import forget as forget_rows

    cli = state(ctx)
    with guarded(as_json):
        try:
            request = ForgetRequest(
                workload,
                source=source,
                ids=read_ids(ids) if ids is not None else None,
                before=_date(before) if before is not None else None,
            )
        except ValueError as exc:
            fail(as_json, str(exc), code=2)
        report = forget_rows(cli.warehouse(), request, cli.home)
    result = report.as_dict()
    emit(as_json, result, lambda: _render(result))


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"--before: {text!r} is not an ISO date (e.g. 2026-01-31)") from exc


def _render(result: dict[str, Any]) -> None:
    deleted = result["deleted"]
    out.print(
        f"forgot {deleted.get('interactions', 0):,} interactions of {result['workload_id']} "
        f"({result['selector']}): " + ", ".join(f"{k}={v}" for k, v in deleted.items() if k != "interactions")
    )
    if result["snapshots_affected"]:
        out.print(
            "snapshots that held them: " + ", ".join(result["snapshots_affected"]) + "; run `flywheel curate`"
        )
    if result["models_to_retrain"]:
        out.print("[yellow]models trained on them (retrain):[/] " + ", ".join(result["models_to_retrain"]))
