"""`flywheel run` and `flywheel demo`: whole turns of the loop, orchestrated by Prefect.

Prefect is imported inside the commands (from flows/), so the library itself never needs it; with no
PREFECT_API_URL set, Prefect starts an ephemeral API for the run (no server to install).
"""

from __future__ import annotations

import os
import shutil
import time
from typing import Any

import typer

from flywheel.cli.app import JsonOpt, Table, app, emit, fail, guarded, out, state

SUMMARY_KEYS = ("decision", "champion", "metric", "student_score", "teacher_score", "saved_pct")


def _quiet_prefect(as_json: bool) -> None:
    from flywheel.reaper import reap_children_at_death

    reap_children_at_death()  # Prefect's ephemeral API server must not outlive a kill -9 of this run
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect gives its ephemeral API 20 s to come up; on a busy 2-core laptop it can take longer.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if as_json:  # stdout carries exactly one JSON object: Prefect's run logs go to stderr only
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


@app.command()
def run(
    ctx: typer.Context,
    workload: str = typer.Option(..., "--workload", "-w", help="Workload id from the config"),
    force: bool = typer.Option(False, "--force", help="Retrain even if the snapshot is unchanged"),
    candidate: list[str] = typer.Option(None, "--candidate", "-c", help="Only these students"),
    max_usd: float | None = typer.Option(None, "--max-usd", help="Teacher budget for this run"),
    label_mode: str = typer.Option("replay", "--label-mode", help="replay | relabel | synthesize"),
    as_json: bool = JsonOpt,
) -> None:
    """One turn of the flywheel for a workload of your config: ingest, curate, label, train, gate."""
    _quiet_prefect(as_json)
    cli = state(ctx)
    started = time.monotonic()
    with guarded(as_json):
        config = cli.require_config()
        config.workload(workload)
        from flywheel.loop import WorkloadBusy, workload_lock

        try:
            # Refuse before Prefect starts; the flow's own workload_lock joins this one.
            with workload_lock(cli.home, workload, share=True):
                from flows.flywheel_flow import flywheel_loop

                turn = flywheel_loop(
                    workload,
                    str(cli.config_path),
                    str(cli.home),
                    force,
                    candidate or None,
                    max_usd,
                    label_mode,
                )
        except WorkloadBusy as exc:
            fail(as_json, str(exc))
    payload = {"seconds": round(time.monotonic() - started, 1), "workloads": {workload: _short(turn)}}
    emit(as_json, payload | {"turns": {workload: turn}}, lambda: _render(payload))


@app.command()
def demo(
    ctx: typer.Context,
    seed: int = typer.Option(7, "--seed"),
    size: int = typer.Option(1500, "--size", help="Clean records per workload"),
    fresh: bool = typer.Option(False, "--fresh", help="Start from an empty FLYWHEEL_HOME"),
    as_json: bool = JsonOpt,
) -> None:
    """Demo traffic for three workloads, then a whole flywheel turn for each (no setup needed)."""
    _quiet_prefect(as_json)
    cli = state(ctx)
    home = cli.home
    started = time.monotonic()
    if fresh and home.exists():
        shutil.rmtree(home)
    with guarded(as_json):
        from flows.demo import demo_flow

        result = demo_flow(str(home), seed, size)
    workloads = {w: _short(turn) for w, turn in result["workloads"].items()}
    payload = {"seconds": round(time.monotonic() - started, 1), "home": str(home), "workloads": workloads}
    payload["served"] = result.get("served")
    emit(as_json, payload | {"turns": result["workloads"]}, lambda: _render(payload, result["config"]))


def _short(turn: dict[str, Any]) -> dict[str, Any]:
    return {key: turn.get(key) for key in SUMMARY_KEYS} | {
        "records_in": turn.get("records_in"),
        "curated_out": turn.get("curated_out"),
        "student_ci": turn.get("student_ci"),
        "teacher_ci": turn.get("teacher_ci"),
        "projected_monthly_saved_usd": turn.get("projected_monthly_saved_usd"),
        "target": turn.get("target"),
        "reasons": turn.get("reasons"),
        "eval_rows_needed": turn.get("eval_rows_needed"),
        "stage_seconds": turn.get("seconds"),
    }


def _render(payload: dict[str, Any], config: str | None = None) -> None:
    table = Table(
        title=f"flywheel ({payload['seconds']:.0f} s)",
        caption="saved: to date, after the flywheel's own spend (training, labeling); it turns positive "
        "once `flywheel serve` answers traffic with the student. $/month: projected savings at the "
        "last 7 days' traffic.",
    )
    columns = (
        "workload",
        "in",
        "curated",
        "decision",
        "metric",
        "student (95% CI)",
        "teacher",
        "saved",
        "$/month",
    )
    for column in columns:
        table.add_column(column)
    for workload, s in payload["workloads"].items():
        table.add_row(
            workload,
            _n(s["records_in"]),
            _n(s["curated_out"]),
            s["decision"] or "-",
            s["metric"] or "-",
            _score(s["student_score"], s["student_ci"]),
            _score(s["teacher_score"], s["teacher_ci"]),
            _pct(s["saved_pct"]),
            "-" if s["projected_monthly_saved_usd"] is None else f"{s['projected_monthly_saved_usd']:,.2f}",
        )
    out.print(table)
    for workload, s in payload["workloads"].items():
        out.print(decision_line(workload, s), highlight=False)
    if payload.get("served"):
        _render_served(payload["served"])
    if config:
        home = payload.get("home")
        out.print(f"\nconfig: {config}\nwarehouse and models: {home}")
        out.print(f"dashboard: .venv/bin/flywheel --home {home} --config {config} dashboard")
        out.print(f"serve the students: .venv/bin/flywheel --home {home} --config {config} serve --port 8000")


def decision_line(workload: str, summary: dict[str, Any]) -> str:
    """`W: decision (reasons); gate target ...`: what `flywheel evaluate -w W` says of the same turn."""
    line = f"{workload}: {summary.get('decision') or 'skipped'}"
    reasons = summary.get("reasons") or []
    if reasons:
        line += f" ({', '.join(reasons)})"
    if summary.get("target"):
        line += f"; gate target {summary['target']}"
    needed = summary.get("eval_rows_needed")
    if needed:
        line += f"; the eval split is too small to tell: about {needed} eval rows would resolve it"
    return line


def _n(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _score(value: float | None, ci: list[float | None] | None) -> str:
    if value is None:
        return "-"
    if ci and None not in ci:
        return f"{value:.3f} ({ci[0]:.3f}-{ci[1]:.3f})"
    return f"{value:.3f}"


def _render_served(served: dict[str, Any]) -> None:
    """The demo's served day: who answered, and what the traffic cost against the teacher alone."""
    title = f"a day of fresh traffic through `flywheel serve` ({served['served']:,} calls); ledger to date"
    table = Table(title=title)
    for column in ("workload", "calls", "on student", "fallbacks", "teacher alone", "actual", "saved"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for workload, row in (served.get("ledger") or {}).items():
        requests = row.get("served_requests") or 0
        table.add_row(
            workload,
            _n(requests),
            _share(row.get("student_requests"), requests),
            _share(row.get("fallback_requests"), requests),
            _usd(row.get("teacher_usd")),
            _usd(row.get("actual_usd")),
            _usd(row.get("saved_usd")),
        )
    out.print(table)


def _pct(value: float | None) -> str:
    """A share to whole percent; a rounding of -0.3% reads 0%, not -0%."""
    if value is None:
        return "-"
    return f"{value:.0%}" if round(value * 100) != 0 else "0%"


def _share(part: Any, whole: Any) -> str:
    return f"{part / whole:.0%}" if part is not None and whole else "-"


def _usd(value: Any) -> str:
    if value is None:
        return "-"
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
