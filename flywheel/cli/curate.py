"""Curation commands: `flywheel curate` (build a dataset snapshot) and `flywheel quality` (explain it)."""

from __future__ import annotations

from typing import Any

import duckdb
import typer
from rich.markup import escape
from rich.text import Text

from flywheel.cli.app import JsonOpt, Table, app, emit, fail, guarded, out, progress_bar, state


@app.command()
def curate(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id from the config"),
    refresh_eval: bool = typer.Option(False, "--refresh-eval", help="Carve a new eval split"),
    as_json: bool = JsonOpt,
) -> None:
    """Check, scrub, de-duplicate and de-bias a workload's traffic into a versioned dataset snapshot."""
    from flywheel.curate import NothingKept, curate_workload

    cli = state(ctx)
    with guarded(as_json):
        workload_config = cli.require_config().workload(workload)
        try:
            with progress_bar(f"curating {workload}") as advance:
                report = curate_workload(
                    cli.warehouse(),
                    workload_config,
                    home=cli.home,
                    refresh_eval=refresh_eval,
                    progress=advance,
                )
        except LookupError as exc:
            fail(as_json, str(exc))
        except NothingKept as exc:
            fail(as_json, str(exc), top_reason=exc.top_reason, curation=exc.report.as_dict())
    emit(as_json, report.as_dict(), lambda: _render_curation(report.as_dict()))


def _render_curation(result: dict[str, Any]) -> None:
    table = Table(title=f"curation funnel: {result['workload_id']}")
    table.add_column("step")
    table.add_column("rows", justify="right")
    table.add_row("in", f"{result['in']:,}")
    for reason, n in result["rejected"].items():
        table.add_row(f"  rejected: {reason}", f"-{n:,}")
    table.add_row("out", f"{result['out']:,}")
    out.print(table)
    splits = ", ".join(f"{k}={v:,}" for k, v in result["splits"].items())
    reused = " (identical to an existing snapshot)" if result["reused_snapshot"] else ""
    growth = ", ".join(f"{k} {result[f'eval_{k}']:,}" for k in ("carried", "added", "dropped"))
    out.print(
        f"snapshot [bold]{result['snapshot_id']}[/]{reused}: {splits}; "
        f"eval from {result['eval_snapshot_id']} ({growth})"
    )
    if result["pii"]:
        out.print("PII scrubbed: " + ", ".join(f"{k}={v}" for k, v in sorted(result["pii"].items())))
    slices = result["slices"]
    if slices:
        before, after = slices["before"], slices["after"]
        out.print(
            f"{slices['kind']} slices: max share {before['max_share']:.1%} -> {after['max_share']:.1%}, "
            f"entropy {before['entropy_bits']:.2f} -> {after['entropy_bits']:.2f} bits"
        )
        if slices["capped"]:
            out.print(
                "capped: "
                + ", ".join(f"{k} {v['before']}->{v['after']}" for k, v in slices["capped"].items())
            )
        if slices.get("rare"):
            out.print("rare (synthesize more): " + ", ".join(slices["rare"]))
        for warning in slices.get("warnings", []):
            out.print(f"[yellow]warning:[/] {escape(warning)}")
    tokens = result["tokens_per_example"]
    if tokens:
        out.print(
            f"prompt tokens per example: {tokens['before']:.0f} -> {tokens['after']:.0f} (pruned template)"
        )
    if result["export_path"]:
        out.print(f"export: {result['export_path']}")
    proposal = result.get("label_proposal")
    if proposal:
        counts = ", ".join(f"{k}={v}" for k, v in proposal["labels"].items())
        out.print(f"[yellow]no labels configured;[/] proposed from the answers: {escape(str(counts))}")
        if proposal["label_parser"]:
            out.print(f"  label_parser ({proposal['wrapping']}): {proposal['label_parser']}")


@app.command()
def quality(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id"),
    rejected: str | None = typer.Option(None, "--rejected", help="List the rows rejected for REASON"),
    limit: int = typer.Option(50, "--limit", help="Rows to list with --rejected"),
    as_json: bool = JsonOpt,
) -> None:
    """Show the latest curation run: funnel, data-quality results, PII and slices; or rejected rows."""
    from flywheel.quality.report import quality_summary, rejected_rows

    with guarded(as_json):
        warehouse = state(ctx).warehouse()
        try:
            if rejected is not None:
                result = warehouse.read(lambda con: rejected_rows(con, workload, rejected, limit))
            else:
                result = warehouse.read(lambda con: quality_summary(con, workload))
        except (LookupError, duckdb.CatalogException) as exc:
            message = str(exc) if isinstance(exc, LookupError) else "no curation run yet"
            fail(as_json, f"{message}: run `flywheel curate --workload {workload}`")
    render = (lambda: _render_rejected(result)) if rejected is not None else (lambda: _render_quality(result))
    emit(as_json, result, render)


def _render_quality(result: dict[str, Any]) -> None:
    funnel = result["funnel"]
    out.print(f"[bold]{result['workload_id']}[/] run {result['run_id']} -> snapshot {result['snapshot_id']}")
    out.print(
        f"in {funnel['in']:,} -> out {funnel['out']:,}; rejected: "
        + (", ".join(f"{k}={v}" for k, v in funnel["rejected"].items()) or "none")
    )
    table = Table(title="data-quality expectations (latest batches)")
    for column in ("batch", "expectation", "column", "ok", "unexpected", "rows"):
        table.add_column(column)
    for item in result["expectations"]:
        ok = "-" if item["success"] is None else ("yes" if item["success"] else Text("no", style="red"))
        table.add_row(
            item["batch_id"] or "-",
            item["expectation"].removeprefix("expect_").replace("column_values_to_", ""),
            item["column"] or "",
            ok,
            str(item["unexpected_count"] if item["unexpected_count"] is not None else ""),
            str(item["element_count"] if item["element_count"] is not None else ""),
        )
    out.print(table)
    if result["pii"]:
        out.print("PII scrubbed: " + ", ".join(f"{k}={v}" for k, v in result["pii"].items()))
    rare = [s["slice"] for s in result["slices"] if s["rare"]]
    if rare:
        out.print("rare slices: " + ", ".join(rare))
    for warning in result.get("slice_warnings", []):
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    _render_calibration(result.get("dedup", {}), result.get("dedup_calibration", []))


def _render_calibration(dedup: dict[str, Any], pairs: list[dict[str, Any]]) -> None:
    """The near-duplicate pairs nearest the threshold: what moving the threshold would merge or split."""
    if dedup:
        out.print("duplicates: " + ", ".join(f"{k}={v}" for k, v in dedup.items()))
    if not pairs:
        return
    table = Table(title=f"near-duplicate calibration (threshold {pairs[0]['threshold']})")
    for column in ("jaccard", "merged", "why", "a", "b"):
        table.add_column(column, overflow="fold")
    for pair in pairs:
        table.add_row(
            f"{pair['score']:.3f}", "yes" if pair["merged"] else "no", pair["why"],
            pair["a"]["input"][:80], pair["b"]["input"][:80],
        )  # fmt: skip
    out.print(table)


def _render_rejected(result: dict[str, Any]) -> None:
    table = Table(title=f"rejected: {result['reason']} ({result['count']:,} rows, run {result['run_id']})")
    for column in ("source", "detail", "input", "answer"):
        table.add_column(column, overflow="fold")
    for row in result["rows"]:
        table.add_row(row["source_ref"], row["detail"] or "", row["input"][:120], (row["answer"] or "")[:80])
    out.print(table)
