"""Cost commands: `flywheel costs` (the savings ledger) and `flywheel dashboard` (the ops dashboard)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import typer

from flywheel.cli.app import CliState, JsonOpt, Table, app, emit, err, fail, guarded, out, state, warn_all
from flywheel.costs import (
    CostAssumptions,
    hardware_profile,
    load_hardware_profiles,
    record_assumptions,
    savings_report,
)
from flywheel.hardware_profiles import DEFAULT_PROFILE
from flywheel.layout import HOME_ENV, WAREHOUSE_ENV

HardwareOpt = typer.Option(
    DEFAULT_PROFILE, "--hardware", help="Serving hardware profile (flywheel/hardware_profiles.yaml)"
)
TrainingHardwareOpt = typer.Option(
    None, "--training-hardware", help="Profile pricing training wall time (default: --hardware)"
)


@app.command()
def costs(
    ctx: typer.Context,
    workload: str | None = typer.Option(None, "--workload", "-w", help="Only this workload"),
    hardware: str = HardwareOpt,
    training_hardware: str | None = TrainingHardwareOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Savings ledger: teacher vs actual cost, savings, break-even and monthly projection per workload."""
    cli = state(ctx)
    with guarded(as_json):
        warehouse = cli.warehouse()
        cli.sync_served()  # what `flywheel serve` answered counts at once, even before any ingest
        if not warehouse.exists():
            raise FileNotFoundError(
                f"{warehouse.location}: no warehouse yet (run `flywheel demo` or `flywheel ingest`)"
            )
        assumptions = _record(cli, as_json, hardware, training_hardware)
        report = savings_report(warehouse, workload)
    if workload and workload not in report["workloads"]:
        known = ", ".join(a.workload_id for a in assumptions) or "none"
        fail(as_json, f"no traffic or costs for workload {workload!r} (known: {known})")
    chosen = [a for a in assumptions if workload in (None, a.workload_id)]
    payload = report | {
        "assumptions": {a.workload_id: a.as_dict() for a in chosen},
        "warehouse": warehouse.location,
    }
    emit(as_json, payload, lambda: _render(report))
    warn_all(report["warnings"])


@app.command()
def dashboard(
    ctx: typer.Context,
    port: int = typer.Option(8501, "--port", help="Port to serve on"),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (0.0.0.0 to share)"),
    hardware: str = HardwareOpt,
    training_hardware: str | None = TrainingHardwareOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Serve the ops dashboard (Streamlit) over this warehouse until interrupted."""
    cli = state(ctx)
    with guarded(as_json):
        warehouse = cli.warehouse()
        if warehouse.exists():  # price the views first; an empty dashboard says what to run
            _record(cli, as_json, hardware, training_hardware)
    env = os.environ | {WAREHOUSE_ENV: warehouse.location, HOME_ENV: str(cli.home)}
    command = [
        sys.executable, "-m", "streamlit", "run", str(dashboard_app_path()),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    # Streamlit's own chatter goes to stderr: in --json mode stdout carries exactly one JSON object.
    process = subprocess.Popen(command, env=env, stdout=sys.stderr)
    url = f"http://{host}:{port}"
    emit(
        as_json,
        {"url": url, "pid": process.pid, "warehouse": warehouse.location},
        lambda: err.print(f"dashboard at {url} (Ctrl-C to stop)"),
    )
    # Stopping this command stops the server: Ctrl-C arrives as KeyboardInterrupt, SIGTERM is forwarded.
    signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        code = process.wait()
    except KeyboardInterrupt:
        process.terminate()
        code = process.wait()
    raise typer.Exit(0 if code in (0, -signal.SIGTERM) else code)


def dashboard_app_path() -> Path:
    """The Streamlit app's file, found without importing the dashboard (the CLI never imports it:
    Streamlit runs it in its own process)."""
    import importlib.util

    spec = importlib.util.find_spec("dashboards")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the dashboards package is not installed beside flywheel")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def _record(
    cli: CliState, as_json: bool, hardware: str, training_hardware: str | None
) -> list[CostAssumptions]:
    try:
        serving = hardware_profile(hardware)
        training = hardware_profile(training_hardware) if training_hardware else serving
    except ValueError as exc:
        fail(as_json, str(exc), code=2)
    cli.sync_served()
    return record_assumptions(
        cli.warehouse(),
        cli.prices(),
        serving=serving,
        training_usd_per_hour=training.usd_per_hour,
        teacher_models=cli.teacher_models(),
    )


def _render(report: dict[str, Any]) -> None:
    if not report["workloads"]:
        out.print("no traffic yet: run `flywheel demo` or `flywheel ingest PATH --workload W`")
        return
    table = Table(title="savings ledger (USD)")
    columns = (
        "workload", "requests", "on student", "teacher", "teacher/req", "actual", "saved", "saved %",
        "break-even",
    )  # fmt: skip
    for column in (*columns, "monthly (proj.)"):
        table.add_column(column, justify="left" if column == "workload" else "right")
    for workload_id, s in report["workloads"].items():
        table.add_row(
            workload_id,
            f"{s['requests']:,}",
            _pct(s["student_share"]),
            f"{s['teacher_usd']:,.4f}",
            "-" if s["teacher_usd_per_request"] is None else f"{s['teacher_usd_per_request']:.6f}",
            f"{s['actual_usd']:,.4f}",
            f"{s['saved_usd']:,.4f}",
            _pct(s["saved_pct"]),
            s["break_even_day"] or "-",
            "-" if s["projected_monthly_saved_usd"] is None else f"{s['projected_monthly_saved_usd']:,.2f}",
        )
    out.print(table)
    profiles = ", ".join(f"{p.name} ${p.usd_per_hour}/h" for p in load_hardware_profiles().values())
    out.print(f"hardware profiles (--hardware): {profiles}")
    out.print("definitions: the dashboard's Costs page (`flywheel dashboard`) or flywheel/costs/__init__.py")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"
