"""The workload page's cascade and per-tool section (v_cascades, v_tool_metrics of
0013_cascade_tools.sql): how much traffic each candidate can answer while the mix with the teacher
meets the gate's target, and, for tool_call workloads, which tools and parameters each model gets
right. Rows are shown as the views give them."""

from __future__ import annotations

import streamlit as st

from dashboards import data, ui
from dashboards.data import Query

ORDERS = {"v_cascades": "evaluated_at DESC, model_id", "v_tool_metrics": "model_id, tool, parameter, metric"}
CASCADE_COLUMNS = ["evaluated_at", "model_id", "claims", "threshold", "coverage", "mix_value", "mix_ci_low",
                   "promoted_partially", "decision"]  # fmt: skip


def section(workload: str) -> None:
    """Cascade coverage per candidate of the latest evaluation, then per-tool metrics (each only when
    the workload has rows: a classification workload shows no tool section)."""
    views = data.load_all({view: Query(view, workload, order) for view, order in ORDERS.items()})
    if not views["v_cascades"].empty:  # silent until an evaluation calibrated one (older warehouses too)
        st.subheader("Coverage (calibrated cascade)")
        cascades = views["v_cascades"].frame
        latest = cascades[cascades["run_id"] == cascades["run_id"].iloc[0]]
        ui.table(latest, columns=CASCADE_COLUMNS, coverage=st.column_config.NumberColumn(format="percent"))
    tools = views["v_tool_metrics"]
    if tools.empty:
        return
    frame = tools.frame
    st.subheader("Per-tool metrics")
    model = st.selectbox("Model", sorted(frame["model_id"].unique()), key="tool_model")
    mine = frame[frame["model_id"] == model]
    overall = mine[mine["tool"] == "(all)"].set_index("metric")["value"]
    st.caption(
        f"Text-vs-tool decision accuracy {ui.pct(overall.get('decision_accuracy'))} · function-name "
        f"accuracy on tool-call turns {ui.pct(overall.get('name_accuracy'))} · coverage "
        f"{ui.pct(overall.get('coverage'))}"
    )
    per_tool = mine[(mine["tool"] != "(all)") & mine["parameter"].isna()]
    ui.table(per_tool.pivot_table(index="tool", columns="metric", values="value").reset_index())
    per_param = mine[mine["parameter"].notna()]
    if not per_param.empty:
        ui.table(
            per_param.pivot_table(index=["tool", "parameter"], columns="metric", values="value").reset_index()
        )
