"""Overview: money saved to date, how much cheaper, traffic on students, and whether quality held."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, data, ui

TABLE_COLUMNS = [
    "workload_id", "requests", "student_share", "teacher_usd", "actual_usd", "saved_usd", "saved_pct",
    "break_even_day", "projected_monthly_saved_usd", "champion_model_id", "metric", "champion_value",
    "teacher_value", "shadow_value", "quality_held",
]  # fmt: skip


def headline(total: pd.Series) -> None:
    saved, cheaper, on_students, held = st.columns(4)
    saved.metric("Saved to date", ui.usd(total["saved_usd"]))
    cheaper.metric("Cheaper than the teacher", ui.pct(total["saved_pct"]))
    on_students.metric("Traffic on students", ui.pct(total["student_share"]))
    champions = int(total["workloads_with_champion"])
    held.metric(
        "Quality held",
        f"{int(total['workloads_quality_held'])} of {champions}" if champions else "no champion yet",
        help="Workloads whose champion scores at least the teacher's lower CI bound (see Costs).",
    )
    projected = ui.usd(total["projected_monthly_saved_usd"])
    if not total["student_share"]:  # nothing served yet: the projection is what a student would save
        st.caption(
            f"Projected savings over the next 30 days: {projected}, hypothetical: no student serves yet "
            "(the ingested traffic's teacher cost minus the candidate's estimated cost, no fallbacks)"
        )
    else:
        st.caption(
            f"Projected savings over the next 30 days: {projected}, at the last 7 days' served traffic "
            "(its student share and fallback rate)"
        )


st.title("Flywheel overview")
views = data.load_all(
    {
        "summary": data.Query("v_overview", order_by="workload_id"),
        "totals": data.Query("v_overview_totals"),
        "daily": data.Query("v_savings_daily", order_by="workload_id, day"),
    }
)
summary = ui.rows(
    views["summary"], "No traffic yet: run `flywheel demo` (or `flywheel ingest`), then reload."
)
if summary is not None and not views["totals"].empty:
    headline(views["totals"].frame.iloc[0])
    ui.chart(charts.teacher_vs_actual(summary), key="teacher_vs_actual")
    if not views["daily"].empty:
        ui.chart(charts.cumulative_saved(views["daily"].frame), key="cumulative_saved")
    ui.table(summary, columns=TABLE_COLUMNS)
