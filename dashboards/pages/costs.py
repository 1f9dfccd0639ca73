"""Costs: the savings ledger per workload and day, break-even, flywheel spend and the assumptions."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import flywheel.costs
from dashboards import charts, data, timerange, ui
from flywheel.costs.teacher_cost import unpriced_warning
from flywheel.pricing import config_hint

SUMMARY_COLUMNS = [
    "workload_id", "requests", "teacher_usd", "serving_usd", "flywheel_usd", "actual_usd", "saved_usd",
    "saved_pct", "break_even_day", "monthly_requests", "saved_per_request", "projected_monthly_saved_usd",
    "projection_basis", "unpriced",
]  # fmt: skip
BASES = {  # v_savings_summary.projection_basis, in words
    "served": "the last 7 days of served traffic",
    "ingested": "hypothetical, no student serves yet (ingested traffic at the candidate's estimated cost)",
    "no_candidate_cost": "none (no candidate cost yet)",
}
DAILY_COLUMNS = [
    "day", "requests", "student_requests", "fallback_requests", "teacher_usd", "serving_usd", "flywheel_usd",
    "actual_usd", "saved_usd", "saved_pct", "cum_saved_usd", "broke_even",
]  # fmt: skip


def workload_ledger(summary_row: dict, daily: pd.DataFrame, window: timerange.Window) -> None:
    workload = summary_row["workload_id"]
    st.subheader(workload)
    broke_even, basis = summary_row["break_even_day"], summary_row["projection_basis"]
    st.caption(
        f"break-even: {'not yet' if ui.missing(broke_even) else ui.day_text(broke_even)}"
        f" · projection basis: {'-' if ui.missing(basis) else BASES.get(basis, basis)}"
    )
    own = daily[daily["workload_id"] == workload]
    ui.chart(charts.break_even(own, broke_even, workload, window), key=f"break_even_{workload}")
    with st.expander(f"Daily ledger: {workload}"):
        ui.table(own, columns=DAILY_COLUMNS)


st.title("Costs")
window = timerange.current()
views = data.load_all(
    {
        "summary": data.Query("v_savings_summary", order_by="workload_id"),
        "daily": data.Query("v_savings_daily", order_by="workload_id, day", days=window.days),
        "ledger": data.Query("v_cost_ledger_daily", order_by="day, kind", days=window.days),
        "assumptions": data.Query("cost_assumptions", order_by="workload_id"),
        "unpriced": data.Query("v_unpriced_models", order_by="requests DESC, model"),
    }
)
if not views["unpriced"].empty:  # unknown is not free: say which model and the line that prices it
    for item in views["unpriced"].frame.to_dict("records"):
        st.warning(unpriced_warning(item | {"fix": config_hint(item["model"])}))
summary = ui.rows(
    views["summary"], "No traffic or costs yet: run `flywheel demo` (or `flywheel ingest`), then reload."
)
if summary is not None:
    st.caption(
        "This table is to date, all history (break-even and the projection too); the charts below: "
        f"{ui.range_text(window)}."
    )
    ui.table(summary, columns=SUMMARY_COLUMNS)
    if not views["ledger"].empty:
        ui.chart(charts.ledger_by_kind(views["ledger"].frame, window), key="ledger_by_kind")
    if not views["daily"].empty:
        for row in summary[summary["requests"] > 0].to_dict("records"):
            workload_ledger(row, views["daily"].frame, window)
    st.subheader("Pricing assumptions")
    if views["assumptions"].empty:
        st.info("Not priced yet: run `flywheel costs` (student-served traffic falls back to logged rates).")
    else:
        ui.table(views["assumptions"].frame)
with st.expander("How these numbers are computed", expanded=summary is None):
    st.markdown(flywheel.costs.__doc__ or "")
