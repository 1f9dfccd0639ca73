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
    splits: str = typer.Option("train,val,eval", "--splits", help="Splits to label (replay/relabel)"),
    per_slice: int = typer.Option(20, "--per-slice", help="synthesize: new examples per rare slice"),
    as_json: bool = JsonOpt,
) -> None:
    """Label a snapshot: replay logged answers (free), relabel with the teacher, or synthesize rare slices."""
    if mode not in MODES:
        fail(as_json, f"--mode must be one of {', '.join(MODES)}, got {mode!r}", code=2)
    if max_usd is not None and max_usd < 0:
        fail(as_json, "--max-usd must be >= 0", code=2)
    cli = state(ctx)
    with guarded(as_json):
        config = cli.require_config()
        workload_config = config.workload(workload)
        warehouse, prices = cli.warehouse(), cli.prices()
        examples, snapshot_id = _load(warehouse, workload, snapshot, splits, as_json)
        client = None
        if mode != "replay":
            from flywheel.teacher import make_client

            client = make_client(config.teacher_for(workload))
        priorities, gain = _served_priorities(config, workload_config, warehouse, mode)
        try:
            report = _run(
                workload_config,
                mode,
                examples,
                snapshot_id,
                warehouse,
                prices,
                client,
                max_usd,
                per_slice,
                priorities,
            )
        except KeyboardInterrupt:
            fail(as_json, "interrupted: answers already paid for are saved; re-run to continue", code=130)
        finally:
            if client is not None:
                client.close()
    payload = {**report.as_dict(), "snapshot_id": snapshot_id, "teacher_model": client and client.model}
    payload["expected_gain"] = gain
    emit(as_json, payload, lambda: _render(payload))
    if report.labeled == 0 and report.failed > 0:
        raise typer.Exit(1)


def _served_priorities(config: Any, workload: Any, warehouse: Any, mode: str) -> tuple[list, Any]:
    """Served calls by priority and the expected gain (flywheel/active.py); nothing for replay."""
    if mode == "replay":
        return [], None
    from flywheel.active import active_report
    from flywheel.config.serve import ServeConfig

    serve = config.serve or ServeConfig()
    threshold = serve.thresholds.get(workload.id, serve.confidence_threshold)
    return active_report(warehouse, workload, threshold)


def _load(
    warehouse: Any, workload: str, snapshot: str | None, splits: str, as_json: bool
) -> tuple[list, str]:
    from flywheel.datasets import latest_snapshot_id, load_examples

    wanted = [s.strip() for s in splits.split(",") if s.strip()]
    snapshot_id = snapshot or latest_snapshot_id(warehouse, workload)
    if snapshot_id is None:
        fail(
            as_json, f"no dataset snapshot for {workload}: run `flywheel curate --workload {workload}` first"
        )
    try:
        return load_examples(warehouse, workload, snapshot_id, splits=wanted), snapshot_id
    except LookupError as exc:
        fail(as_json, str(exc).strip("'\""))


def _run(
    workload: Any,
    mode: str,
    examples: list,
    snapshot_id: str,
    warehouse: Any,
    prices: Any,
    client: Any,
    max_usd: float | None,
    per_slice: int,
    priorities: list,
) -> Any:
    from flywheel.active import prioritize, synthesis_slices
    from flywheel.teacher import label_examples, synthesize_for_slices
    from flywheel.teacher.synthesize import seed_text

    common = {"client": client, "warehouse": warehouse, "prices": prices, "max_usd": max_usd}
    if mode != "synthesize":
        # the budget goes first where serving showed the student wrong or unsure, then rare slices
        ordered = prioritize(examples, priorities) if mode == "relabel" else examples
        with progress_bar(f"labeling {workload.id} ({mode})", total=len(examples)) as advance:
            return label_examples(
                ordered, workload, mode, snapshot_id=snapshot_id, progress=advance, **common
            )
    wanted = synthesis_slices(_rare_slices(warehouse, workload.id, snapshot_id), priorities)
    ordered = prioritize(examples, priorities)  # the hardest served examples are shown as seeds
    seeds = {name: [e for e in ordered if e.slice == name and e.split == "train"] for name in wanted}
    seeds = {name: found for name, found in seeds.items() if found}
    if not seeds:
        err.print(
            f"no rare or hard slices with training examples in snapshot {snapshot_id}: nothing to synthesize"
        )
    with progress_bar(f"synthesizing {workload.id}", total=per_slice * len(seeds)) as advance:
        return synthesize_for_slices(
            seeds,
            per_slice,
            workload,
            existing_texts=[seed_text(e) for e in examples],
            snapshot_id=snapshot_id,
            progress=advance,
            **common,
        )


def _rare_slices(warehouse: Any, workload_id: str, snapshot_id: str) -> list[str]:
    """Slices curation flagged rare in this snapshot (client slices are not example slices)."""
    sql = (
        "SELECT DISTINCT slice FROM slice_stats WHERE workload_id = ? AND snapshot_id = ? AND rare "
        "AND slice_kind <> 'client' ORDER BY slice"
    )
    return [
        row[0] for row in warehouse.read(lambda con: con.execute(sql, [workload_id, snapshot_id]).fetchall())
    ]


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
    out.print(f"run {payload['run_id']} on snapshot {payload['snapshot_id']} in {payload['seconds']:.1f}s")
