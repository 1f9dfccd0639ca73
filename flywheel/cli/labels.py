"""`flywheel labels import FILE -w W --match prompt|id|column`: gold labels from people onto interactions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from flywheel.cli.app import JsonOpt, Table, emit, err, fail, guarded, labels_app, out, state

MATCH_HELP = (
    "prompt: the user's prompt text; id: the interaction id; column: an ingested source column (--column)"
)


@labels_app.command("import")
def import_labels(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="CSV, TSV, JSONL, JSON or Parquet file of labels"),
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id from the config"),
    match: str = typer.Option("prompt", "--match", help=MATCH_HELP),
    column: str | None = typer.Option(
        None, "--column", help="The file's key column (with --match column: the source column too)"
    ),
    label_column: str = typer.Option("label", "--label-column", help="The file's label column"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Match and report, store nothing"),
    as_json: bool = JsonOpt,
) -> None:
    """Attach human/gold labels to logged interactions; the next `flywheel curate` uses them as gold."""
    from flywheel.gold import MATCHES, GoldFileError, import_gold_labels

    if match not in MATCHES:
        fail(as_json, f"--match must be one of {', '.join(MATCHES)}, got {match!r}", code=2)
    if match == "column" and not column:
        fail(as_json, "--match column needs --column NAME (the source column to match on)", code=2)
    cli = state(ctx)
    with guarded(as_json):
        workload_config = cli.require_config().workload(workload)
        try:
            report = import_gold_labels(
                cli.warehouse(),
                workload_config,
                path,
                match=match,  # type: ignore[arg-type]
                column=column,
                label_column=label_column,
                dry_run=dry_run,
            )
        except GoldFileError as exc:
            fail(as_json, str(exc))
    payload = report.as_dict()
    if payload["rows"] and not payload["matched"]:
        fail(as_json, _nothing_matched(payload), **payload)
    emit(as_json, payload, lambda: _render(payload))


def _nothing_matched(payload: dict[str, Any]) -> str:
    first = (payload["unmatched_rows"] or [{}])[0]
    return (
        f"none of the {payload['rows']} rows of {payload['path']} matched an interaction of "
        f"{payload['workload']!r} on {payload['match']} (column {payload['key_column']!r}); first: "
        f"{first.get('ref', '-')} {first.get('key', '')!r}"
    )


def _render(payload: dict[str, Any]) -> None:
    table = Table(title=f"gold labels for {payload['workload']} (match on {payload['match']})")
    table.add_column(Path(payload["path"]).name)
    table.add_column("count", justify="right")
    for key in ("rows", "matched", "unmatched", "invalid", "conflicts", "labeled", "changed"):
        table.add_row(key, f"{payload[key]:,}")
    out.print(table)
    for kind, rows in (("unmatched", payload["unmatched_rows"]), ("invalid", payload["invalid_rows"])):
        for row in rows[:5]:
            err.print(f"{kind}: {row['ref']}: {row.get('reason') or row.get('key')}", highlight=False)
    coverage = payload["eval"]
    if coverage["total"] is not None:
        complete = coverage["with_gold"] == coverage["total"]
        out.print(
            f"eval split: {coverage['with_gold']:,} of {coverage['total']:,} examples have gold; "
            + ("the gate judges against gold" if complete else "the gate stays on the teacher reference")
            + " (reference auto) after the next `flywheel curate`",
            highlight=False,
        )
    if payload["dry_run"]:
        out.print("dry run: nothing stored")
