"""The Overview's headline recomputed from raw tables (interactions, served_calls, cost_ledger, models),
never through the views the page reads: what the dashboard tests compare tile values against.

Builds on tests/costs/independent.py (per-request teacher and served cost from the raw rows and the
catalog), over an inclusive day range like the sidebar's time filter.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any

import duckdb

from flywheel.pricing import PriceCatalog
from tests.costs import independent


def _inside(day: date, since: date | None, until: date | None) -> bool:
    return (since is None or day >= since) and (until is None or day <= until)


def headline(con: duckdb.DuckDBPyConnection, since: date | None = None, until: date | None = None) -> dict:
    """The money tiles and student share over [since, until] (None: unbounded)."""
    served = [r for r in independent.request_rows(con) if r["source"] == "spool"]
    served = [r for r in served if _inside(r["day"], since, until)]
    spend = [s for s in independent.spend_rows(con) if _inside(s[1], since, until)]
    students = [r for r in served if r["kind"] == "student"]
    fallbacks = [r for r in served if r["kind"] == "teacher"]
    avoided = sum(r["teacher"] for r in served)
    student_usd = sum(r["served"] for r in students) + sum(
        u for _, _, k, u in spend if k == "student_serving"
    )
    fallback_usd = sum(r["served"] for r in fallbacks)
    flywheel = sum(u for _, _, k, u in spend if k != "student_serving")
    return {
        "served_requests": len(served),
        "student_requests": len(students),
        "fallback_requests": len(fallbacks),
        "avoided_usd": avoided,
        "student_fallback_usd": student_usd + fallback_usd,
        "flywheel_usd": flywheel,
        "net_saved_usd": avoided - student_usd - fallback_usd - flywheel,
        "student_share": len(students) / len(served) if served else None,
    }


def break_even(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Net saved to date over all workloads, and the first day of the last positive stretch."""
    daily: dict[date, float] = defaultdict(float)
    for days in independent.expected_daily(con).values():
        for day, entry in days.items():
            daily[day] += entry["teacher"] - entry["serving"] - entry["flywheel"]
    running, last_unpaid = 0.0, None
    for day in sorted(daily):
        running += daily[day]
        if running <= 0:
            last_unpaid = day
    paid = [d for d in sorted(daily) if last_unpaid is None or d > last_unpaid]
    return {
        "net_to_date_usd": running,
        "break_even_day": paid[0] if running > 0 and paid else None,
        "last_day": max(daily),
        "first_day": min(daily),
    }


def projected_monthly(con: duckdb.DuckDBPyConnection) -> float:
    summary = independent.expected_summary(con)
    return sum(w["projected_monthly_saved_usd"] or 0.0 for w in summary.values())


def data_days(con: duckdb.DuckDBPyConnection) -> list[date]:
    """Every UTC day with traffic (production or served) or spend (ledger, training)."""
    rows = con.execute(
        "SELECT CAST(coalesce(ts, ingested_at) AS DATE) FROM interactions WHERE source <> 'spool' "
        "UNION SELECT CAST(coalesce(ts, synced_at) AS DATE) FROM served_calls "
        'UNION SELECT CAST("at" AS DATE) FROM cost_ledger '
        "UNION SELECT CAST(created_at AS DATE) FROM models WHERE train_seconds IS NOT NULL"
    ).fetchall()
    return sorted(d for (d,) in rows)


def serve_health(con: duckdb.DuckDBPyConnection, since: date | None, until: date | None) -> dict[str, Any]:
    """All workloads: served calls, fallback rate (calls to a workload without a champion are proxied,
    not fallbacks) and p95 latency, straight from served_calls."""
    lo, hi = since or date(1, 1, 1), until or date(9999, 12, 31)
    requests, fallbacks, proxied, p95 = con.execute(
        "SELECT count(*), "
        "count(*) FILTER (WHERE metadata->>'served_by' = 'teacher' "
        "                 AND metadata->>'fallback_reason' IS DISTINCT FROM 'no_champion'), "
        "count(*) FILTER (WHERE metadata->>'fallback_reason' = 'no_champion'), "
        "quantile_cont(latency_ms, 0.95) FROM served_calls "
        "WHERE CAST(coalesce(ts, synced_at) AS DATE) BETWEEN ? AND ?",
        [lo, hi],
    ).fetchone()
    asked = requests - proxied
    return {"requests": requests, "fallback_rate": fallbacks / asked if asked else None, "p95_ms": p95}


def last_days(con: duckdb.DuckDBPyConnection, n: int) -> tuple[date, date]:
    last = data_days(con)[-1]
    return last - timedelta(days=n - 1), last


def served_money(con: duckdb.DuckDBPyConnection, teachers: dict[str, str], usd_per_hour: float) -> dict:
    """Headline money of any warehouse from served_calls, token_counts, cost_ledger and models, priced
    with the catalog: a student answer at its workload teacher's price, a teacher answer at its own
    model's price (else its logged cost), spend = ledger + training without a ledger row at the rate."""
    prices = PriceCatalog.load()
    calls = con.execute(
        "SELECT s.workload_id, s.metadata->>'served_by', s.model, "
        "coalesce(s.prompt_tokens, t.prompt_tokens), coalesce(s.completion_tokens, t.completion_tokens), "
        "s.cost_usd "
        "FROM served_calls s LEFT JOIN token_counts t ON t.id = s.id"
    ).fetchall()
    avoided = serving = 0.0
    students = 0
    for workload, served_by, model, prompt, completion, cost in calls:
        if served_by == "student":
            students += 1
            avoided += prices.cost(teachers[workload], prompt, completion)
            serving += cost
        else:
            own = prices.cost(model, prompt, completion)
            avoided += own if own is not None else cost
            serving += own if own is not None else cost
    (ledger,) = con.execute(
        "SELECT coalesce(sum(usd), 0) FROM cost_ledger WHERE kind <> 'student_serving'"
    ).fetchone()
    (trained,) = con.execute(
        "SELECT coalesce(sum(train_seconds), 0) FROM models WHERE model_id NOT IN "
        "(SELECT ref FROM cost_ledger WHERE kind = 'training' AND ref IS NOT NULL)"
    ).fetchone()
    spend = ledger + trained * usd_per_hour / 3600
    return {
        "served_requests": len(calls),
        "avoided_usd": avoided,
        "student_fallback_usd": serving,
        "flywheel_usd": spend,
        "net_saved_usd": avoided - serving - spend,
        "student_share": students / len(calls) if calls else None,
    }
