"""The only module of the dashboard that queries the warehouse.

A page asks for all the views it shows at once: they are read over ONE short read-only connection
through `Warehouse.read`, which retries while a flow holds the file for writing (DuckDB lets one
process write and blocks every other process meanwhile). One connection per page keeps the lock
contention low and makes the page's numbers one consistent snapshot. Results are cached for a few
seconds; when the warehouse stays busy past the timeout a page keeps showing the rows it read last,
marked stale, instead of failing. Pages show view rows as they are: the arithmetic lives in the
views (flywheel/store/migrations/0007_costs.sql).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from flywheel.layout import DEFAULT_HOME, HOME_ENV, WAREHOUSE_ENV, WAREHOUSE_FILE
from flywheel.store.db import WarehouseBusy
from flywheel.store.factory import warehouse_at

READ_TIMEOUT_S = 20.0
CACHE_TTL_S = 5
# What a page may read: the views of 0007_costs.sql, 0010_teacher_cost.sql, 0011_shadow_feedback.sql
# and 0012_ops_headline.sql, and the assumptions they were priced with.
VIEWS = frozenset(
    {
        "cost_assumptions",
        "v_cost_ledger_daily",
        "v_curation_rejections",
        "v_daily_traffic",
        "v_data_days",
        "v_headline_outlook",
        "v_fallback_reasons",
        "v_fallbacks_daily",
        "v_funnel",
        "v_gate_decisions",
        "v_latency_daily",
        "v_model_quality",
        "v_overview",
        "v_overview_totals",
        "v_promotions",
        "v_quality_held",
        "v_runs",
        "v_savings_daily",
        "v_savings_summary",
        "v_shadow_agreement",
        "v_feedback_daily",
        "v_slices",
        "v_unpriced_models",
        "v_cascades",  # 0013_cascade_tools.sql
        "v_tool_metrics",
    }
)
# Table macros of 0012_ops_headline.sql: called with the selected (since, until) days, NULL = unbounded.
MACROS = frozenset({"headline", "serve_health", "savings_range"})
# The day of each row of the views a time range filters (UTC calendar days, like the money views).
DAY_COLUMNS = {
    "v_savings_daily": "day",
    "v_cost_ledger_daily": "day",
    "v_daily_traffic": "day",
    "v_data_days": "day",
    "v_fallbacks_daily": "day",
    "v_latency_daily": "day",
    "v_shadow_agreement": "day",
    "v_feedback_daily": "day",
    "v_runs": "CAST(started_at AS DATE)",
}
EARLIEST, LATEST = "DATE '0001-01-01'", "DATE '9999-12-31'"  # an open side of a range
NO_WAREHOUSE = "No warehouse at `{path}` yet. Run `flywheel demo` (or `flywheel ingest`), then reload."
NO_VIEW = "This warehouse has no `{view}` yet: run `flywheel costs` once to upgrade its schema."
BUSY = "The warehouse is busy (a flow is writing); this page retries on the next refresh."


@dataclass(frozen=True)
class DayRange:
    """Inclusive UTC days; None on a side means unbounded (all history)."""

    since: date | None = None
    until: date | None = None

    @property
    def bounded(self) -> bool:
        return self.since is not None or self.until is not None


ALL_DAYS = DayRange()


@dataclass(frozen=True)
class Query:
    """Every row of `view` (or table macro), of one workload when given, within `days` when the view
    has a day, ordered by `order_by` (column names)."""

    view: str
    workload_id: str | None = None
    order_by: str | None = None
    days: DayRange = ALL_DAYS

    def sql(self) -> tuple[str, list[object]]:
        if self.view in MACROS:
            source, params = f"{self.view}(?, ?)", [self.days.since, self.days.until]
        elif self.view in VIEWS:
            source, params = self.view, []
        else:
            raise ValueError(f"unknown view {self.view!r}")
        where = []
        if self.workload_id:
            where.append("workload_id = ?")
            params.append(self.workload_id)
        if self.view in DAY_COLUMNS and self.days.bounded:
            column = DAY_COLUMNS[self.view]
            where.append(f"{column} BETWEEN coalesce(?, {EARLIEST}) AND coalesce(?, {LATEST})")
            params += [self.days.since, self.days.until]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        order = f"ORDER BY {self.order_by}" if self.order_by else ""
        return f"SELECT * FROM {source} {clause} {order}", params


@dataclass
class ViewData:
    """Rows of one view, or why there are none (`problem` says what to run)."""

    frame: pd.DataFrame
    problem: str | None = None
    stale: bool = False

    @property
    def empty(self) -> bool:
        return self.problem is not None or self.frame.empty


_last_good: dict[tuple[str, tuple[Query, ...]], dict[str, ViewData]] = {}


def warehouse_path() -> Path:
    """FLYWHEEL_WAREHOUSE (set by `flywheel dashboard`), else $FLYWHEEL_HOME/warehouse.duckdb."""
    explicit = os.environ.get(WAREHOUSE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).expanduser() / WAREHOUSE_FILE


def prefect_ui_url() -> str | None:
    """The Prefect UI to link runs to: PREFECT_UI_URL, else PREFECT_API_URL without its /api suffix."""
    ui = os.environ.get("PREFECT_UI_URL")
    if ui:
        return ui.rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    return api.removesuffix("/api") or None


def load_all(queries: dict[str, Query]) -> dict[str, ViewData]:
    """Every query's rows, read over one connection; a missing warehouse or view becomes a `problem`."""
    names, wanted = list(queries), tuple(queries.values())
    path = str(warehouse_path())
    try:
        results = _read(path, wanted)
    except FileNotFoundError:
        problem = NO_WAREHOUSE.format(path=path)
        return {name: ViewData(pd.DataFrame(), problem=problem) for name in names}
    except WarehouseBusy:
        if (path, wanted) in _last_good:
            last = _last_good[(path, wanted)]
            return {name: ViewData(view.frame, view.problem, stale=True) for name, view in last.items()}
        return {name: ViewData(pd.DataFrame(), problem=BUSY) for name in names}
    loaded = {
        name: ViewData(pd.DataFrame(), problem=result) if isinstance(result, str) else ViewData(result)
        for name, result in zip(names, results, strict=True)
    }
    _last_good[(path, wanted)] = loaded
    return loaded


def load(
    view: str, workload_id: str | None = None, order_by: str | None = None, days: DayRange = ALL_DAYS
) -> ViewData:
    return load_all({view: Query(view, workload_id, order_by, days)})[view]


def workloads() -> list[str]:
    """Every workload with traffic, sorted (ledger rows without a workload have none)."""
    summary = load("v_savings_summary", order_by="workload_id")
    if summary.empty:
        return []
    return [str(w) for w in summary.frame.loc[summary.frame["requests"] > 0, "workload_id"]]


def clear_cache() -> None:
    _read.clear()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def _read(path: str, queries: tuple[Query, ...]) -> list[pd.DataFrame | str]:
    """Each query's frame, or the reason it has none (its view does not exist in this warehouse)."""

    def read_all(con: duckdb.DuckDBPyConnection) -> list[pd.DataFrame | str]:
        results: list[pd.DataFrame | str] = []
        for query in queries:
            sql, params = query.sql()
            try:
                results.append(con.execute(sql, params).df())
            except duckdb.CatalogException:
                results.append(NO_VIEW.format(view=query.view))
        return results

    return warehouse_at(path, timeout_s=READ_TIMEOUT_S).read(read_all)  # a file, or `ducklake:<catalog>`
