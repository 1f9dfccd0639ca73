"""`flywheel label`: targets for a workload's snapshot from the teacher (replay | relabel | synthesize)."""

from __future__ import annotations

from typing import Any

import typer

from flywheel.cli.app import JsonOpt, Table, app, emit, err, fail, guarded, out, progress_bar, state

MODES = ("replay", "relabel", "synthesize")


@app.command()
def label(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id from the config"),
    mode: str = typer.Option("replay", "--mode", "-m", help="replay | relabel | synthesize"),
    max_usd: float | None = typer.Option(
        None, "--max-usd", help="Hard budget for this run (default: config)"
    ),
    snapshot: str | None = typer.Option(None, "--snapshot", help="Dataset snapshot id (default: latest)"),
    splits: str = typer.Option("train,val", "--splits", help="Splits to label (replay/relabel)"),
    per_slice: int = typer.Option(20, "--per-slice", help="synthesize: new examples per rare slice"),
    as_json: bool = JsonOpt,
) -> None:
    """Label a snapshot: replay logged answers (free), relabel with the teacher, or synthesize rare slices."""
    if mode not in MODES:
        fail(as_json, f"--mode must be one of {', '.join(MODES)}, got {mode!r}", code=2)
    if max_usd is not None and max_usd < 0:
        fail(as_json, "--max-usd must be >= 0", code=2)
    wanted = tuple(s.strip() for s in splits.split(",") if s.strip())
    cli = state(ctx)
    with guarded(as_json):
        from flywheel.loop import Loop, label_stage

        config = cli.require_config()
        config.workload(workload)
        loop = Loop(config, cli.home, cli.warehouse(), cli.prices())
        with progress_bar(f"{mode} {workload}") as advance:
            try:
                payload = label_stage(
                    loop, workload, mode, max_usd, advance,
                    snapshot_id=snapshot, splits=wanted, per_slice=per_slice,
                )  # fmt: skip
            except KeyboardInterrupt:
                fail(as_json, "interrupted: answers already paid for are saved; re-run to continue", code=130)
            except LookupError as exc:  # an unknown snapshot id
                fail(as_json, str(exc).strip("'\""))
    emit(as_json, payload, lambda: _render(payload))
    if payload["labeled"] == 0 and payload["failed"] > 0:
        raise typer.Exit(1)


def _render(payload: dict[str, Any]) -> None:
    table = Table(title=f"label {payload['workload_id']} ({payload['mode']})")
    for column in ("labeled", "cached", "calls", "failed", "skipped", "cost $"):
        table.add_column(column, justify="right")
    counts = (payload[k] for k in ("labeled", "cached", "calls", "failed", "skipped"))
    table.add_row(*(f"{n:,}" for n in counts), f"{payload['cost_usd']:.4f}")
    out.print(table)
    if payload["failures"]:
        out.print("failures: " + ", ".join(f"{k}={v}" for k, v in sorted(payload["failures"].items())))
    if payload["stopped_reason"] == "budget":
        out.print("[yellow]stopped: the budget was reached; what was labeled is kept. Re-run to continue.[/]")
    if payload["stopped_reason"] == "teacher_unavailable":
        out.print(
            "[yellow]stopped: the teacher endpoint kept failing after retries; what was labeled is kept. "
            "Check teacher.base_url and the key, then re-run to continue.[/]"
        )
    gain = payload.get("expected_gain")
    if gain and gain["flagged"]:
        reasons = ", ".join(f"{k}={v}" for k, v in gain["by_top_reason"].items() if v)
        share = gain["share_of_errors_covered"]
        out.print(
            f"served calls first: {gain['flagged']} of {gain['served']} flagged ({reasons}); they hold "
            f"{'-' if share is None else f'{share:.0%}'} of the student's estimated errors "
            f"(a uniform pick of as many: {gain['uniform_share']:.0%})"
        )
    if payload["mode"] == "synthesize" and payload["labeled"] == 0 and not payload["failed"]:
        err.print("no rare or hard slices with training examples in this snapshot: nothing to synthesize")
    out.print(f"run {payload['run_id']} on snapshot {payload['snapshot_id']} in {payload['seconds']:.1f}s")
