"""Presentation helpers shared by the pages: number formats, empty states, charts and tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards.data import ViewData
from dashboards.timerange import Window


def missing(value: Any) -> bool:
    """None, NaN, NaT or NA: what a NULL in a view becomes in a DataFrame."""
    return value is None or (not isinstance(value, list | tuple | dict) and bool(pd.isna(value)))


def usd(value: Any) -> str:
    """Dollars; small amounts keep their cents and mills ($0.0035, not $0.00)."""
    if missing(value):
        return "-"
    amount = float(value)
    sign, amount = ("-" if amount < 0 else ""), abs(amount)
    if amount != 0 and amount < 0.01:
        return f"{sign}${amount:,.4f}"
    return f"{sign}${amount:,.3f}" if amount < 1 else f"{sign}${amount:,.2f}"


def ms(value: Any) -> str:
    return "-" if missing(value) else f"{float(value):,.0f} ms"


def pct(value: Any) -> str:
    return "-" if missing(value) else f"{float(value):.1%}"


def rows(view: ViewData, empty: str) -> pd.DataFrame | None:
    """The view's rows, or None after telling the reader what to run to get some."""
    if view.problem:
        st.info(view.problem)
        return None
    if view.frame.empty:
        st.info(empty)
        return None
    if view.stale:
        st.caption("The warehouse is busy (a flow is writing): showing the last rows read.")
    return view.frame


def chart(figure: go.Figure, key: str) -> None:
    st.plotly_chart(figure, width="stretch", key=key)


def column_formats(columns: list[str]) -> dict[str, Any]:
    """Money, ratios and days formatted by their column-name suffix (the views' naming convention)."""
    formats: dict[str, Any] = {}
    for name in columns:
        if name.endswith("_usd"):  # small money keeps its mills: $0.0031, not $0.00
            formats[name] = st.column_config.NumberColumn(name, format="$%.4f")
        elif name in ("saved_per_request", "student_usd_per_1k"):  # fractions of a cent matter here
            formats[name] = st.column_config.NumberColumn(name, format="$%.6f")
        elif name.endswith(("_pct", "_share", "_rate")):
            formats[name] = st.column_config.NumberColumn(name, format="percent")
        elif name.endswith("_ms"):
            formats[name] = st.column_config.NumberColumn(name, format="%.0f ms")
        elif name == "day" or name.endswith("_day"):
            formats[name] = st.column_config.DateColumn(name, format="YYYY-MM-DD")
    return formats


def table(frame: pd.DataFrame, columns: list[str] | None = None, **config: Any) -> None:
    shown = frame[columns] if columns else frame
    formats = column_formats(list(shown.columns)) | config
    st.dataframe(shown, hide_index=True, width="stretch", column_config=formats or None)


def day_text(value: Any) -> str:
    return "-" if missing(value) else str(pd.Timestamp(value).date())


def range_text(window: Window) -> str:
    """The chosen range and the days with data inside it, for a caption."""
    chosen = f" ({window.days.since} to {window.days.until})" if window.days.bounded else ""
    if window.first is None:
        return f"{window.label}{chosen}: no data in this range"
    count = len(window.data_days)
    return (
        f"{window.label}{chosen}: data on {count} day{'s' if count != 1 else ''} "
        f"from {window.first} to {window.last} (UTC)"
    )
