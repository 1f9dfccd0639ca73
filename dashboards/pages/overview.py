"""Overview: the headline an ops person keeps open. Money in the chosen time range (what the served
traffic would have cost on the teacher, what it cost instead, the flywheel's own spend, net saved),
student share, break-even and the projection with its basis, serve health, and quality held.

Every figure is a row of 0012_ops_headline.sql (headline, v_headline_outlook, serve_health) or
0007_costs.sql: this page formats them and adds nothing up.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards import charts, data, timerange, ui

TABLE_COLUMNS = [
    "workload_id", "requests", "student_share", "teacher_usd", "actual_usd", "saved_usd", "saved_pct",
    "break_even_day", "projected_monthly_saved_usd", "champion_model_id", "metric", "champion_value",
    "teacher_value", "shadow_value", "quality_held",
]  # fmt: skip
HEALTH_COLUMNS = [
    "workload_id", "requests", "student_requests", "fallback_requests", "proxied_requests", "fallback_rate",
    "errors", "p50_ms", "p95_ms", "student_p95_ms", "teacher_p95_ms", "first_day", "last_day",
]  # fmt: skip


def money_tiles(head: pd.Series) -> None:
    avoided, serving, spend, net = st.columns(4)
    avoided.metric(
        "Teacher cost avoided", ui.usd(head["avoided_usd"]),
        help=f"What the {int(head['served_requests'])} calls `flywheel serve` answered would have cost "
        f"sent to the teacher; the {int(head['student_requests'])} student answers: "
        f"{ui.usd(head['student_avoided_usd'])}.",
    )  # fmt: skip
    serving.metric(
        "Student + fallback cost", ui.usd(head["student_fallback_usd"]),
        help=f"Student compute (and shadow checks) {ui.usd(head['student_usd'])} + the teacher's bill for "
        f"the {int(head['fallback_requests'])} calls it answered (fallbacks, and workloads without a "
        f"champion) {ui.usd(head['fallback_usd'])}.",
    )  # fmt: skip
    spend.metric("Flywheel spend", ui.usd(head["flywheel_usd"]), help="Labeling, training, evaluation.")
    net.metric(
        "Net saved", ui.usd(head["net_saved_usd"]), help="Teacher cost avoided - student + fallback - spend."
    )


def outlook_tiles(head: pd.Series, outlook: pd.Series | None, totals: pd.Series | None) -> None:
    share, even, projected, held = st.columns(4)
    served = int(head["served_requests"])
    share.metric(
        "Student share", ui.pct(head["student_share"]) if served else "nothing served",
        help=f"Of the {served} served calls in this range, the share the students answered.",
    )  # fmt: skip
    if outlook is None:
        even.metric("Break-even", "-")
        projected.metric("Projected, next 30 days", "-")
    else:
        even.metric("Break-even", break_even_text(outlook), help=break_even_help(outlook))
        projected.metric("Projected, next 30 days", ui.usd(outlook["projected_monthly_saved_usd"]))
    champions = 0 if totals is None else int(totals["workloads_with_champion"])
    held.metric(
        "Quality held",
        f"{int(totals['workloads_quality_held'])} of {champions}" if champions else "no champion yet",
        help="Workloads whose champion scores at least the teacher's lower CI bound (see Costs).",
    )
    if outlook is not None:
        st.caption(f"Break-even and projection use all history. Projection basis: {basis_text(outlook)}")


def break_even_text(outlook: pd.Series) -> str:
    if not ui.missing(outlook["break_even_day"]):
        return ui.day_text(outlook["break_even_day"])
    return "not yet"


def break_even_help(outlook: pd.Series) -> str:
    net = f"Net saved to date {ui.usd(outlook['net_to_date_usd'])}."
    if not ui.missing(outlook["break_even_day"]):
        return f"{net} Cumulative net savings have been positive since this day."
    if ui.missing(outlook["projected_break_even_day"]):
        return f"{net} No projected date: the projection does not save money."
    return (
        f"{net} Projected {ui.day_text(outlook['projected_break_even_day'])} at "
        f"{ui.usd(outlook['projected_daily_saved_usd'])}/day ({basis_text(outlook)})."
    )


def basis_text(outlook: pd.Series) -> str:
    parts = []
    if not ui.missing(outlook["served_workloads"]):
        parts.append(
            f"{outlook['served_workloads']}: the last {int(outlook['window_days'])} days of served traffic "
            f"(to {ui.day_text(outlook['window_end'])}), its student share and fallback rate"
        )
    if not ui.missing(outlook["hypothetical_workloads"]):
        parts.append(
            f"{outlook['hypothetical_workloads']}: hypothetical, no student serves yet (ingested traffic "
            "at the candidate's estimated cost, no fallbacks)"
        )
    if not ui.missing(outlook["unprojected_workloads"]):
        parts.append(f"{outlook['unprojected_workloads']}: not projected (no candidate cost yet)")
    return "; ".join(parts) or "no projection yet (no traffic)"


def serve_health(health: data.ViewData) -> None:
    st.subheader("Serve health")
    rows = health.frame if health.empty else health.frame[health.frame["requests"] > 0]
    rows = ui.rows(
        data.ViewData(rows, health.problem, health.stale),
        "Nothing served in this range: `flywheel serve` logs every call it answers.",
    )
    if rows is None:
        return
    overall = rows[rows["workload_id"] == "all workloads"].iloc[0]
    requests, fallback, p95, errors = st.columns(4)
    requests.metric("Requests served", f"{int(overall['requests']):,}")
    fallback.metric(
        "Fallback rate", ui.pct(overall["fallback_rate"]),
        help="Of the calls a student was asked to answer, the share handed to the teacher "
        f"({int(overall['proxied_requests'])} calls to workloads without a champion are not counted).",
    )  # fmt: skip
    p95.metric("p95 latency", ui.ms(overall["p95_ms"]))
    errors.metric("Errors", f"{int(overall['errors']):,}")
    ui.table(rows, columns=HEALTH_COLUMNS)
    st.caption(f"From served calls synced from the serve spool up to {overall['synced_at']} UTC.")


st.title("Flywheel overview")
window = timerange.current()
views = data.load_all(
    {
        "head": data.Query("headline", days=window.days),
        "outlook": data.Query("v_headline_outlook"),
        "health": data.Query("serve_health", days=window.days),
        "by_workload": data.Query("savings_range", days=window.days, order_by="workload_id"),
        "summary": data.Query("v_overview", order_by="workload_id"),
        "totals": data.Query("v_overview_totals"),
        "daily": data.Query("v_savings_daily", order_by="workload_id, day", days=window.days),
    }
)
summary = ui.rows(
    views["summary"], "No traffic yet: run `flywheel demo` (or `flywheel ingest`), then reload."
)
heads = None if summary is None else ui.rows(views["head"], "No traffic yet: run `flywheel demo`.")
if summary is not None and heads is not None:
    st.caption(ui.range_text(window))
    head = heads.iloc[0]
    money_tiles(head)
    outlook = None if views["outlook"].empty else views["outlook"].frame.iloc[0]
    totals = None if views["totals"].empty else views["totals"].frame.iloc[0]
    outlook_tiles(head, outlook, totals)
    serve_health(views["health"])
    if not views["by_workload"].empty:
        ui.chart(charts.teacher_vs_actual(views["by_workload"].frame), key="teacher_vs_actual")
    if not views["daily"].empty:
        ui.chart(charts.cumulative_saved(views["daily"].frame, window), key="cumulative_saved")
    st.subheader("Per workload, all history")
    ui.table(summary, columns=TABLE_COLUMNS)
