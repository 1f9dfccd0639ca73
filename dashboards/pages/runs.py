"""Runs: flywheel flow runs and the stage runs that record themselves, with links to the Prefect UI."""

from __future__ import annotations

import json

import streamlit as st

from dashboards import charts, data, ui

COLUMNS = [
    "started_at", "flow", "workload_id", "status", "duration_s", "decision", "reasons", "summary", "run_id",
    "recorded_in",
]  # fmt: skip


def readable(summary: object) -> tuple[str | None, str | None, str | None]:
    """(decision, reasons, the rest in a few words) of a run's stored summary, JSON or text."""
    if not isinstance(summary, str):
        return None, None, None
    try:
        body = json.loads(summary)
    except ValueError:
        return None, None, summary
    if not isinstance(body, dict):
        return None, None, summary
    reasons = body.get("reasons")
    reasons = ", ".join(map(str, reasons)) if isinstance(reasons, list) else reasons
    rest = {
        k: v for k, v in body.items() if k not in ("decision", "reasons") and isinstance(v, str | int | float)
    }
    return body.get("decision"), reasons, "; ".join(f"{k}: {v}" for k, v in list(rest.items())[:6]) or None


st.title("Runs")
runs = ui.rows(
    data.load("v_runs", order_by="started_at DESC"),
    "No runs yet: `flywheel run` (or a Prefect deployment) records every flow run here.",
)
if runs is not None:
    ui.chart(charts.run_durations(runs), key="run_durations")
    parsed = [readable(summary) for summary in runs["summary"]]
    runs = runs.assign(
        decision=[p[0] for p in parsed], reasons=[p[1] for p in parsed], summary=[p[2] for p in parsed]
    )
    prefect_ui = data.prefect_ui_url()
    columns = list(COLUMNS)
    if prefect_ui:
        runs = runs.assign(
            prefect=[
                f"{prefect_ui}/runs/flow-run/{run_id}" if isinstance(run_id, str) else None
                for run_id in runs["prefect_flow_run_id"]
            ]
        )
        columns.insert(1, "prefect")
    else:
        st.caption("Set PREFECT_API_URL (or PREFECT_UI_URL) to link runs to the Prefect UI.")
    ui.table(
        runs,
        columns=columns,
        prefect=st.column_config.LinkColumn("Prefect", display_text="open"),
        duration_s=st.column_config.NumberColumn("seconds", format="%.1f"),
    )
