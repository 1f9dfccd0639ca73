"""Runs: flywheel flow runs and the stage runs that record themselves: status, duration, the decision
and its reasons (v_runs reads them out of each run's summary), and a link to the Prefect run."""

from __future__ import annotations

import streamlit as st

from dashboards import charts, data, timerange, ui

COLUMNS = [
    "started_at", "flow", "workload_id", "status", "duration_s", "decision", "reasons", "run_id",
    "recorded_in",
]  # fmt: skip


def prefect_links(runs: object, prefect_ui: str) -> list[str | None]:
    """The Prefect UI page of each run that Prefect orchestrated (stage runs have none)."""
    return [
        f"{prefect_ui}/runs/flow-run/{run_id}" if isinstance(run_id, str) and run_id else None
        for run_id in runs["prefect_flow_run_id"]  # type: ignore[index]
    ]


st.title("Runs")
window = timerange.current()
runs = ui.rows(
    data.load("v_runs", order_by="started_at DESC", days=window.days),
    "No runs yet: `flywheel run` (or a Prefect deployment) records every flow run here.",
)
if runs is not None:
    st.caption(f"Runs started in the chosen range. {ui.range_text(window)}.")
    ui.chart(charts.run_durations(runs, window), key="run_durations")
    prefect_ui = data.prefect_ui_url()
    columns = list(COLUMNS)
    if prefect_ui:
        runs = runs.assign(prefect=prefect_links(runs, prefect_ui))
        columns.insert(1, "prefect")
    else:
        st.caption("Set PREFECT_UI_URL (or PREFECT_API_URL) to link runs to the Prefect UI.")
    ui.table(
        runs,
        columns=columns,
        prefect=st.column_config.LinkColumn("Prefect", display_text="open"),
        duration_s=st.column_config.NumberColumn("seconds", format="%.1f"),
    )
    with st.expander("Run summaries (as recorded)"):
        ui.table(runs, columns=["run_id", "summary"])
