"""One workload: quality by model version, live agreement, gate decisions, slices, data funnel,
fallbacks, latency, feedback.

The workload is chosen in the selector and kept in the URL (`?workload=<id>`), so each workload has
its own link.
"""

from __future__ import annotations

import streamlit as st

from dashboards import charts, data, timerange, tool_metrics, ui
from dashboards.data import Query, ViewData

ORDERS = {  # view -> order of its rows
    "v_model_quality": "evaluated_at, model_id, metric",
    "v_gate_decisions": "finished_at DESC",
    "v_promotions": "promoted_at DESC",
    "v_funnel": "stage_order",
    "v_curation_rejections": "rows DESC",
    "v_slices": "slice_kind, n_before DESC",
    "v_fallbacks_daily": "day",
    "v_fallback_reasons": "requests DESC",
    "v_latency_daily": "day, served_by",
    "v_shadow_agreement": "day, model_id",
    "v_feedback_daily": "day",
}


def quality_section(workload: str, views: dict[str, ViewData]) -> None:
    st.subheader("Quality by model version")
    frame = ui.rows(
        views["v_model_quality"], f"No evaluations yet: run `flywheel evaluate --workload {workload}`."
    )
    if frame is None:
        return
    metric = st.selectbox("Metric", sorted(frame["metric"].unique()), key="metric")
    latest_run = frame["run_id"].iloc[-1]
    ui.chart(charts.quality(frame[frame["run_id"] == latest_run], metric), key="quality")
    with st.expander("Every evaluation"):
        ui.table(frame)


def live_section(workload: str, views: dict[str, ViewData]) -> None:
    st.subheader("Live agreement (shadowed calls)")
    frame = ui.rows(
        views["v_shadow_agreement"],
        f"No shadow pairs yet: serve with `serve.shadow_rate` > 0, then `flywheel run -w {workload}`.",
    )
    if frame is not None:
        ui.chart(charts.shadow_agreement(frame, timerange.current()), key="shadow_agreement")
    if not views["v_feedback_daily"].empty:
        st.caption("Feedback (POST /v1/feedback)")
        ui.table(views["v_feedback_daily"].frame, columns=["day", "positive", "negative", "corrections"])


def gate_section(views: dict[str, ViewData]) -> None:
    st.subheader("Gate decisions")
    frame = ui.rows(
        views["v_gate_decisions"], "No gate decisions yet: the gate runs at the end of `flywheel evaluate`."
    )
    if frame is not None:
        ui.table(frame, columns=["finished_at", "decision", "winner", "primary_metric", "reasons", "run_id"])
    if not views["v_promotions"].empty:
        st.caption("Promotions and rollbacks")
        ui.table(views["v_promotions"].frame)


def data_section(workload: str, views: dict[str, ViewData]) -> None:
    st.subheader("Data")
    left, right = st.columns(2)
    with left:
        funnel = ui.rows(views["v_funnel"], f"No data yet: run `flywheel ingest PATH --workload {workload}`.")
        if funnel is not None:
            ui.chart(charts.funnel(funnel), key="funnel")
        if not views["v_curation_rejections"].empty:
            ui.table(views["v_curation_rejections"].frame, columns=["reason", "rows"])
    with right:
        slices = ui.rows(
            views["v_slices"], f"No slice statistics yet: run `flywheel curate --workload {workload}`."
        )
        if slices is not None:
            ui.chart(charts.slices(slices), key="slices")


def serving_section(views: dict[str, ViewData]) -> None:
    st.subheader("Serving")
    left, right = st.columns(2)
    with left:
        rates = ui.rows(
            views["v_fallbacks_daily"], "Not served yet: `flywheel serve` logs every call and its fallbacks."
        )
        if rates is not None:
            ui.chart(charts.fallback_rate(rates, timerange.current()), key="fallback_rate")
        if not views["v_fallback_reasons"].empty:
            ui.chart(charts.fallback_reasons(views["v_fallback_reasons"].frame), key="fallback_reasons")
    with right:
        latency = ui.rows(
            views["v_latency_daily"], "No latency recorded: `flywheel serve` measures it per call."
        )
        if latency is not None:
            ui.chart(charts.latency(latency, timerange.current()), key="latency")


st.title("Workload")
known = data.workloads()
if not known:
    st.info("No workloads yet: run `flywheel demo` (or `flywheel ingest PATH --workload W`), then reload.")
else:
    wanted = st.query_params.get("workload")
    chosen = st.selectbox("Workload", known, index=known.index(wanted) if wanted in known else 0)
    st.query_params["workload"] = chosen
    window = timerange.current()  # views without a day (quality, gate, data) show all history
    st.caption(f"Live agreement, feedback, fallbacks and latency: {ui.range_text(window)}.")
    views = data.load_all({view: Query(view, chosen, order, window.days) for view, order in ORDERS.items()})
    quality_section(chosen, views)
    live_section(chosen, views)
    gate_section(views)
    tool_metrics.section(chosen)
    data_section(chosen, views)
    serving_section(views)
