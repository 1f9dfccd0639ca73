"""Plotly figures of view rows. Each function draws the rows it is given and computes nothing new."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import date, timedelta

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboards.timerange import GAP_DAYS, Window

LAYOUT = {"margin": {"l": 10, "r": 10, "t": 40, "b": 10}, "legend_title_text": ""}
HALF_DAY = timedelta(hours=12)
MAX_TICKS = 8
DAY_MS = 86_400_000
EDGE = timedelta(hours=1)


def _styled(figure: go.Figure, title: str) -> go.Figure:
    figure.update_layout(title=title, **LAYOUT)
    return figure


def day_axis(figure: go.Figure, window: Window, plotted: Iterable[object]) -> go.Figure:
    """Span the x axis over the days that have data (the window's, so the charts of a page line up,
    and the chart's own), half a day either side, and cut out every stretch of more than GAP_DAYS
    empty days, saying how long it was: an axis from the first to the last day of data, never a fixed
    or epoch range or months of nothing."""
    instants = [pd.Timestamp(x) for x in plotted if not pd.isna(x)]
    days = sorted({t.date() for t in instants} | set(window.data_days))
    if window.days.since is not None:
        days = [d for d in days if d >= window.days.since]
    if window.days.until is not None:
        days = [d for d in days if d <= window.days.until]
    if not days:
        return figure
    gaps = [(a, b) for a, b in itertools.pairwise(days) if (b - a).days > GAP_DAYS]
    figure.update_xaxes(
        type="date",
        range=_span(days, instants),
        rangebreaks=[{"bounds": [_at(a) + 2 * HALF_DAY, _at(b) - 2 * HALF_DAY]} for a, b in gaps] or None,
    )
    if gaps:  # automatic ticks fall on month starts, mostly inside the cut: label the data's days
        ticks = sorted(set(_spread(days, MAX_TICKS)) | {d for pair in gaps for d in pair})
        figure.update_xaxes(tickmode="array", tickvals=[_at(d) for d in ticks], tickformat="%Y-%m-%d")
    for a, b in gaps:
        figure.add_annotation(
            x=_at(a) + HALF_DAY, y=1, yref="paper", yanchor="top", showarrow=False, textangle=-90,
            text=f"{(b - a).days - 1} days without data", font={"size": 10, "color": "grey"},
        )  # fmt: skip
    return figure


def _span(days: list[date], instants: list[pd.Timestamp]) -> list[pd.Timestamp]:
    """Half a day either side of the first and last day (a daily point sits at midnight), widened to
    keep every plotted instant (a run started at 19:00 on the last day) an hour inside the frame."""
    low, high = _at(days[0]) - HALF_DAY, _at(days[-1]) + HALF_DAY
    inside = [t for t in instants if _at(days[0]) <= t < _at(days[-1]) + 2 * HALF_DAY]
    if inside:
        low, high = min(low, min(inside) - EDGE), max(high, max(inside) + EDGE)
    return [low, high]


def _at(day: date) -> pd.Timestamp:
    return pd.Timestamp(day)


def _spread(days: list[date], most: int) -> list[date]:
    """At most `most` of `days`, evenly spread, first and last included."""
    if len(days) <= most:
        return days
    step = (len(days) - 1) / (most - 1)
    return [days[round(i * step)] for i in range(most)]


def teacher_vs_actual(summary: pd.DataFrame) -> go.Figure:
    """Per workload: what the teacher would have cost vs what was paid (savings_range or
    v_savings_summary rows)."""
    long = summary.melt(
        id_vars="workload_id", value_vars=["teacher_usd", "actual_usd"], var_name="cost", value_name="usd"
    )
    long["cost"] = long["cost"].map({"teacher_usd": "all on teacher", "actual_usd": "actual"})
    figure = px.bar(long, x="workload_id", y="usd", color="cost", barmode="group", labels={"usd": "USD"})
    return _styled(figure, "Teacher cost vs actual cost, by workload")


def cumulative_saved(daily: pd.DataFrame, window: Window) -> go.Figure:
    """Running net savings per workload since its first day (v_savings_daily.cum_saved_usd)."""
    figure = px.line(
        daily, x="day", y="cum_saved_usd", color="workload_id", markers=True, labels={"cum_saved_usd": "USD"}
    )
    figure.add_hline(y=0, line_dash="dot", line_color="grey")
    day_axis(figure, window, daily["day"])
    return _styled(figure, "Cumulative savings (net of flywheel spend)")


def break_even(
    daily: pd.DataFrame, break_even_day: object | None, workload: str, window: Window
) -> go.Figure:
    """One workload: cumulative serving savings vs cumulative flywheel investment."""
    figure = go.Figure()
    figure.add_scatter(x=daily["day"], y=daily["cum_serving_saved_usd"], name="serving savings", mode="lines")
    figure.add_scatter(x=daily["day"], y=daily["cum_flywheel_usd"], name="flywheel investment", mode="lines")
    if break_even_day is not None and not pd.isna(break_even_day):
        day = pd.Timestamp(break_even_day)
        figure.add_shape(type="line", x0=day, x1=day, y0=0, y1=1, yref="paper", line_dash="dash")
        figure.add_annotation(x=day, y=1, yref="paper", text="break-even", showarrow=False, yanchor="bottom")
    figure.update_yaxes(title_text="USD, cumulative")
    day_axis(figure, window, daily["day"])
    return _styled(figure, f"Break-even: {workload}")


def ledger_by_kind(ledger: pd.DataFrame, window: Window) -> go.Figure:
    """Flywheel spend per day and kind (v_cost_ledger_daily)."""
    figure = px.bar(ledger, x="day", y="usd", color="kind", labels={"usd": "USD"})
    figure.update_traces(width=DAY_MS * 0.8)  # a day wide: Plotly sizes a lone date bar as an instant
    day_axis(figure, window, ledger["day"])
    return _styled(figure, "Cost ledger by kind")


def quality(rows: pd.DataFrame, metric: str) -> go.Figure:
    """Score per model version with its bootstrap interval (v_model_quality, one metric)."""
    chosen = rows[rows["metric"] == metric]
    figure = go.Figure(
        go.Bar(
            x=chosen["model_id"],
            y=chosen["value"],
            error_y={
                "type": "data",
                "symmetric": False,
                "array": chosen["ci_high"] - chosen["value"],
                "arrayminus": chosen["value"] - chosen["ci_low"],
            },
            marker_color=["#888" if teacher else "#1f77b4" for teacher in chosen["is_teacher"]],
        )
    )
    figure.update_yaxes(title_text=metric)
    return _styled(figure, f"{metric} by model version (95% CI; grey = teacher)")


def slices(rows: pd.DataFrame) -> go.Figure:
    """Share of each slice in the training pool before and after curation (v_slices)."""
    long = rows.melt(
        id_vars=["slice_kind", "slice"], value_vars=["share_before", "share_after"], var_name="when"
    )
    long["when"] = long["when"].map({"share_before": "before", "share_after": "after"})
    figure = px.bar(
        long, x="slice", y="value", color="when", barmode="group", facet_row="slice_kind",
        labels={"value": "share"},
    )  # fmt: skip
    return _styled(figure, "Slice distribution before / after curation")


def funnel(rows: pd.DataFrame) -> go.Figure:
    """Rows surviving each stage (v_funnel)."""
    figure = go.Figure(go.Funnel(y=rows["stage"], x=rows["rows"], textinfo="value+percent initial"))
    return _styled(figure, "Data funnel")


def fallback_rate(rows: pd.DataFrame, window: Window) -> go.Figure:
    figure = px.line(
        rows, x="day", y="fallback_rate", markers=True, labels={"fallback_rate": "fallback rate"}
    )
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    day_axis(figure, window, rows["day"])
    return _styled(figure, "Fallback to the teacher, per day")


def fallback_reasons(rows: pd.DataFrame) -> go.Figure:
    figure = px.bar(rows, x="fallback_reason", y="requests", labels={"fallback_reason": "reason"})
    return _styled(figure, "Fallback reasons")


def latency(rows: pd.DataFrame, window: Window) -> go.Figure:
    """p50 and p95 latency per day and server (v_latency_daily)."""
    long = rows.melt(id_vars=["day", "served_by"], value_vars=["p50_ms", "p95_ms"], var_name="quantile")
    long["series"] = long["served_by"] + " " + long["quantile"].str.removesuffix("_ms")
    figure = px.line(long, x="day", y="value", color="series", markers=True, labels={"value": "ms"})
    day_axis(figure, window, rows["day"])
    return _styled(figure, "Latency")


def run_durations(runs: pd.DataFrame, window: Window) -> go.Figure:
    """Duration of each finished run at its start time, coloured by status (v_runs). Markers, not
    bars: a bar at an instant on a days-long axis is too thin to see."""
    finished = runs.dropna(subset=["duration_s"])
    figure = px.scatter(
        finished,
        x="started_at",
        y="duration_s",
        color="status",
        symbol="flow",
        hover_data=["run_id", "flow", "workload_id", "decision"],
        labels={"duration_s": "seconds"},
    )
    figure.update_traces(marker_size=11)
    figure.update_yaxes(rangemode="tozero")
    # the runs' own days, not the warehouse's: runs are rarer than traffic and would sit in a corner
    day_axis(figure, Window(window.days, (), window.label), finished["started_at"])
    return _styled(figure, "Run durations")


def shadow_agreement(rows: pd.DataFrame, window: Window) -> go.Figure:
    """Live agreement with the teacher per day and model, its 95% CI, and the gate's target
    (v_shadow_agreement: each row's `target` is the gate.min_agreement it was scored against)."""
    figure = go.Figure()
    for model_id, chosen in rows.groupby("model_id", sort=True):
        figure.add_scatter(
            x=chosen["day"],
            y=chosen["value"],
            name=str(model_id),
            mode="lines+markers",
            error_y={
                "type": "data",
                "symmetric": False,
                "array": chosen["ci_high"] - chosen["value"],
                "arrayminus": chosen["value"] - chosen["ci_low"],
            },
        )
    targets = rows.dropna(subset=["target"]).drop_duplicates("day").sort_values("day")
    if not targets.empty:
        figure.add_scatter(
            x=targets["day"], y=targets["target"], name="gate target", mode="lines", line_dash="dash"
        )
    metric = ", ".join(sorted(rows["metric"].unique()))
    figure.update_yaxes(title_text=metric, range=[0, 1.02])
    day_axis(figure, window, rows["day"])
    return _styled(figure, f"Live agreement with the teacher ({metric}, 95% CI) vs the gate target")
