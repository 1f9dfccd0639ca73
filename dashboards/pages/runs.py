"""Runs: flywheel flow runs and the stage runs that record themselves, with links to the Prefect UI."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, data, ui

COLUMNS = ["started_at", "flow", "workload_id", "status", "duration_s", "summary", "run_id", "recorded_in"]

st.title("Runs")
runs = ui.rows(
    data.load("v_runs", order_by="started_at DESC"),
    "No runs yet: `flywheel run` (or a Prefect deployment) records every flow run here.",
)
if runs is not None:
    ui.chart(charts.run_durations(runs), key="run_durations")
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
