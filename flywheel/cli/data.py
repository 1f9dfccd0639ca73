"""Data commands: init, ingest, stats, demo-data, demo."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from connectors.base import source_formats
from flywheel.cli.app import JsonOpt, Table, app, emit, err, fail, guarded, out, progress_bar, state, warn_all
from flywheel.ingest import IngestReport
from flywheel.stats import workload_stats

FORMAT_HELP = f"One of {', '.join(source_formats())}"



@app.command()
def init(
    path: Path = typer.Argument(Path("flywheel.yaml"), help="Where to write the starter config"),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file"),
    from_logs: list[str] = typer.Option(
        None, "--from", help="Write the config from these logs (files, directories, globs)"
    ),
    workload: str | None = typer.Option(
        None, "--workload", "-w", help="Workload id (default: from the logs)"
    ),
    fmt: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    as_json: bool = JsonOpt,
) -> None:
    """Write a commented starter flywheel.yaml, or (--from LOGS) one inferred from real traffic."""
    if path.exists() and not force:
        fail(as_json, f"{path} exists; pass --force to overwrite")
    if not from_logs:
        template = resources.files("flywheel").joinpath("templates/flywheel.yaml").read_text()
        path.write_text(template)
        emit(
            as_json, {"path": str(path)}, lambda: out.print(f"wrote {path}; edit it, then `flywheel ingest`")
        )
        return
    result = _init_from_logs(path, from_logs, workload, fmt, as_json)
    emit(as_json, result, lambda: _render_init(result))


def _init_from_logs(
    path: Path, logs: list[str], workload: str | None, fmt: str, as_json: bool
) -> dict[str, Any]:
    from pydantic import ValidationError

    from connectors import SourceError, resolve_paths
    from flywheel.init_config import config_document, infer_workloads

    if fmt not in source_formats():
        fail(as_json, f"--format must be one of {', '.join(source_formats())}, got {fmt!r}", code=2)
    try:
        files = resolve_paths(logs)
        found = infer_workloads(files, workload_id=workload, fmt=fmt, config_dir=path.parent)
        if not found:
            fail(as_json, f"no readable calls in {', '.join(logs)}")
        _, text = config_document(found)
    except (SourceError, FileNotFoundError) as exc:
        fail(as_json, str(exc))
    except ValidationError as exc:
        fail(as_json, f"the inferred config is invalid: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    path.write_text(text)
    return {"path": str(path), "workloads": [w.as_dict() for w in found]}


def _render_init(result: dict[str, Any]) -> None:
    for workload in result["workloads"]:
        out.print(f"[bold]{workload['workload_id']}[/]: {workload['task']} ({workload['reason']})")
        labels = workload["labels"]
        if labels:
            out.print("  labels: " + ", ".join(f"{k}={v}" for k, v in labels["labels"].items()))
            out.print(f"  wrapping: {labels['wrapping']}, parser: {labels['label_parser']}")
        if workload["template"]:
            out.print(f"  template: {workload['template']['n_static_tokens']} static tokens")
    out.print(f"wrote {result['path']}; check it, then `flywheel ingest`")


@app.command()
def ingest(
    ctx: typer.Context,
    paths: list[str] = typer.Argument(
        None, help="Files, directories or globs (default: the config's sources)"
    ),
    workload: str | None = typer.Option(None, "--workload", "-w", help="Workload id for records without one"),
    fmt: str = typer.Option("auto", "--format", "-f", help=FORMAT_HELP),
    as_json: bool = JsonOpt,
) -> None:
    """Read LLM logs into the warehouse; every line ends ingested, duplicate or quarantined."""
    if fmt not in source_formats():
        fail(as_json, f"--format must be one of {', '.join(source_formats())}, got {fmt!r}", code=2)
    cli = state(ctx)
    with guarded(as_json):
        with progress_bar("ingesting", refresh_thread=False) as advance:
            report = _ingest(cli, paths, workload, fmt, advance)
        served = _served(cli, report)
    _print_problems(report)
    emit(as_json, report.as_dict() | served, lambda: _render_ingest(report))
    if report.nothing_read:
        raise typer.Exit(1)


def _served(cli: Any, report: IngestReport) -> dict[str, Any]:
    """A serve spool came in and a config names the workloads: join the configured spool's feedback
    to its calls and score each workload's shadow pairs (what `flywheel run` does after its ingest)."""
    if cli.config is None or not any(f.format == "spool" and f.ingested for f in report.files):
        return {}
    from flywheel.loop import Loop, served_stage

    loop = Loop(cli.config, cli.home, cli.warehouse(), cli.prices())
    return {"served": {w.id: served_stage(loop, w.id) for w in cli.config.workloads}}


def _print_problems(report: IngestReport) -> None:
    """One line per problem on stderr: file-level errors, then the first quarantined lines."""
    for message in report.errors:
        err.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    shown = 0
    for file_report in report.files:
        for problem in file_report.problems:
            err.print(f"[yellow]quarantined:[/] {problem}", highlight=False, soft_wrap=True)
            shown += 1
    hidden = report.total("quarantined") - shown
    if hidden > 0:
        err.print(f"… and {hidden:,} more quarantined lines (`flywheel stats`; rows keep their reason)")


def _ingest(cli: Any, paths: list[str] | None, workload: str | None, fmt: str, advance: Any) -> IngestReport:
    """CLI paths as given; else what a flywheel turn ingests: the config's sources and the serve spool."""
    from flywheel.loop import Loop, ingest_files, ingest_sources, source_jobs

    if paths:
        mapping = None
        if workload and cli.config is not None and any(w.id == workload for w in cli.config.workloads):
            sources = cli.config.workload(workload).sources
            mapping = sources[0].mapping.model_dump() if sources and sources[0].mapping else None
        return ingest_files(cli.warehouse(), cli.prices(), paths, workload, fmt, mapping, advance)
    config = cli.require_config()
    if workload is not None:
        config.workload(workload)
    if not source_jobs(config, workload):
        raise FileNotFoundError("nothing to ingest: pass PATH... or configure workload sources")
    return ingest_sources(Loop(config, cli.home, cli.warehouse(), cli.prices()), workload, advance)


def _render_ingest(report: IngestReport) -> None:
    table = Table(title="ingest")
    for column in ("file", "format", "read", "ingested", "duplicates", "quarantined"):
        table.add_column(column, justify="right" if column not in ("file", "format") else "left")
    for f in report.files:
        counts = (f.read, f.ingested, f.duplicates, f.quarantined)
        table.add_row(Path(f.path).name, f.format, *(f"{n:,}" for n in counts))
    out.print(table)
    reasons = report.as_dict()["reasons"]
    if reasons:
        out.print("quarantined: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))


@app.command()
def stats(ctx: typer.Context, as_json: bool = JsonOpt) -> None:
    """Per workload: counts, date range, tokens, cost, teacher cost per request, quarantine reasons."""
    cli = state(ctx)
    with guarded(as_json):
        if cli.warehouse().exists():
            cli.sync_served()
        result = workload_stats(cli.warehouse(), cli.prices(), cli.teacher_models())
    emit(as_json, result, lambda: _render_stats(result))
    warn_all(result["warnings"])


def _render_stats(result: dict[str, Any]) -> None:
    if not result["workloads"]:
        out.print("no interactions yet: run `flywheel ingest PATH --workload W` or `flywheel demo`")
        return
    table = Table(title="workloads")
    columns = (
        "workload",
        "interactions",
        "errors",
        "clients",
        "from",
        "to",
        "tokens in/out",
        "cost $",
        "teacher $/req",
        "unpriced",
        "quar.",
    )
    for column in columns:
        table.add_column(column)
    for workload_id, s in result["workloads"].items():
        tokens = f"{s['prompt_tokens']:,}/{s['completion_tokens']:,}"
        span = [(s[k] or "-")[:10] for k in ("first_ts", "last_ts")]
        table.add_row(
            workload_id,
            f"{s['interactions']:,}",
            f"{s['errors']:,}",
            str(s["clients"]),
            *span,
            tokens,
            f"{s['cost_usd']:.4f}",
            f"{s['teacher_usd_per_request']:.6f}",
            f"{s['unpriced']:,}",
            f"{s['quarantined']:,}",
        )
    out.print(table)
    methods: dict[str, int] = {}
    for s in result["workloads"].values():
        for method, count in s["token_methods"].items():
            methods[method] = methods.get(method, 0) + count
    out.print("tokens from: " + ", ".join(f"{k}={v:,}" for k, v in sorted(methods.items())), highlight=False)
    reasons = result["quarantine"]["reasons"]
    if reasons:
        out.print("quarantine reasons: " + ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())))


@app.command("demo-data")
def demo_data(
    out_dir: Path = typer.Option(Path("demo-data"), "--out", help="Directory for the generated logs"),
    seed: int = typer.Option(7, "--seed"),
    size: int = typer.Option(1500, "--size", help="Clean records per workload, before planted faults"),
    as_json: bool = JsonOpt,
) -> None:
    """Write realistic demo LLM logs (with the faults real logs have) for three workloads."""
    from flywheel.demo import generate_demo_traffic

    if size < 1:
        fail(as_json, "--size must be at least 1", code=2)
    manifest = generate_demo_traffic(out_dir, seed=seed, size=size)
    files = {w: str(out_dir / f"{w}.jsonl") for w in manifest.workloads}
    emit(
        as_json,
        {"out": str(out_dir), "files": files, "seed": seed, "size": size},
        lambda: out.print(f"wrote demo traffic for {', '.join(files)} to {out_dir}"),
    )
