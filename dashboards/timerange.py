"""The time range every page obeys, chosen once in the sidebar, and the day axis it implies.

Ranges end on the last day that has data (traffic or spend, v_data_days), not on today: a warehouse
whose last traffic is a week old still shows its last 7 days instead of an empty page, and the sidebar
says which days are shown. Days are UTC calendar days, like every money view.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboards import data
from dashboards.data import ALL_DAYS, DayRange

ALL, CUSTOM = "All history", "Custom range"
PRESETS = {ALL: None, "Last day": 1, "Last 7 days": 7, "Last 30 days": 30, CUSTOM: None}
STATE_KEY = "time_window"
# Day axes cut out every stretch of more than this many days without data (and say so on the chart):
# two clusters of activity months apart must not leave months of empty axis between them.
GAP_DAYS = 7


@dataclass(frozen=True)
class Window:
    """The chosen range (what queries filter on) and the days with data inside it (what axes span)."""

    days: DayRange = ALL_DAYS
    data_days: tuple[date, ...] = field(default_factory=tuple)
    label: str = ALL

    @property
    def first(self) -> date | None:
        return self.data_days[0] if self.data_days else None

    @property
    def last(self) -> date | None:
        return self.data_days[-1] if self.data_days else None


def _days(view: data.ViewData) -> list[date]:
    if view.empty:
        return []
    return sorted(pd.Timestamp(d).date() for d in view.frame["day"].dropna())


def _preset_range(choice: str, all_days: list[date]) -> DayRange:
    span = PRESETS[choice]
    if span is None or not all_days:
        return ALL_DAYS
    last = all_days[-1]
    return DayRange(last - timedelta(days=span - 1), last)


def _custom_range(all_days: list[date]) -> DayRange:
    first, last = all_days[0], all_days[-1]
    picked = st.date_input(
        "Days (UTC)", value=(first, last), min_value=first, max_value=last, key="custom_days"
    )
    if isinstance(picked, tuple | list) and len(picked) == 2:
        return DayRange(picked[0], picked[1])
    return DayRange(picked[0], picked[0]) if isinstance(picked, tuple | list) and picked else ALL_DAYS


def sidebar() -> Window:
    """Render the range selector (in the sidebar) and remember the window for the page."""
    all_days = _days(data.load("v_data_days", order_by="day"))
    choice = st.selectbox("Time range", list(PRESETS), key="time_range")
    chosen = _custom_range(all_days) if choice == CUSTOM and all_days else _preset_range(choice, all_days)
    inside = tuple(
        d for d in all_days
        if (chosen.since is None or d >= chosen.since) and (chosen.until is None or d <= chosen.until)
    )  # fmt: skip
    window = Window(chosen, inside, choice)
    if all_days:
        st.caption(
            f"Data from {all_days[0]} to {all_days[-1]} (UTC days); showing "
            + (f"{chosen.since} to {chosen.until}" if chosen.bounded else "all of it")
        )
    st.session_state[STATE_KEY] = window
    return window


def current() -> Window:
    """The window the sidebar chose in this run (all history when the sidebar did not run)."""
    window = st.session_state.get(STATE_KEY)
    return window if isinstance(window, Window) else Window()
