"""The dashboard over a demo-like warehouse (tests/dashboard/demo_warehouse.py) in real Chromium.

Every page is screenshotted (demo-<page>.png in $FLYWHEEL_SCREENSHOT_DIR, else the test's tmp dir);
the Overview's tiles, as the browser shows them, equal SQL over the raw tables; the day axis spans the
data's days and cuts out the months between the demo's logs (June 2025) and its served day (today);
the sidebar's time range narrows it to the last day.
"""

from __future__ import annotations

import re
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from dashboards import ui
from tests.dashboard import expected
from tests.dashboard.demo_warehouse import CHAMPION_WORKLOAD, build_demo_warehouse
from tests.dashboard.test_browser import CHART, CHROMIUM, running_dashboard, screenshot_dir

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: `apt-get install -y chromium`"),
]
PAGES = {  # name -> (path, page title)
    "overview": ("", "Flywheel overview"),
    "workload": (f"workload?workload={CHAMPION_WORKLOAD}", "Workload"),
    "runs": ("runs", "Runs"),
    "costs": ("costs", "Costs"),
}
TEACHERS = dict.fromkeys(("support-routing", "order-extraction", "tool-assistant"), "gpt-4o-mini")
USD_PER_HOUR = 0.10  # cpu-2core, the costs stage's default hardware
HALF_DAY = timedelta(hours=12)
AXIS_JS = """(prefix) => {
    for (const el of document.querySelectorAll('.js-plotly-plot')) {
        const layout = el._fullLayout;
        if (layout && layout.title && layout.title.text.includes(prefix)) {
            return {range: layout.xaxis.range,
                    breaks: (layout.xaxis.rangebreaks || []).map(b => b.bounds)};
        }
    }
    return null;
}"""


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("demo") / "home"
    build_demo_warehouse(home)
    return home


def shown_metrics(page: Any) -> dict[str, str]:
    """Each st.metric on the page as the browser renders it: label -> value."""
    shown = {}
    for metric in page.locator('[data-testid="stMetric"]').all():
        label = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        shown[label] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return shown


def axis(page: Any, title: str) -> dict[str, Any]:
    found = page.evaluate(AXIS_JS, title)
    assert found, f"no chart titled {title!r}"
    return {"range": [pd.Timestamp(x) for x in found["range"]], "breaks": found["breaks"]}


def open_page(page: Any, url: str, name: str, shots: Path, suffix: str = "") -> None:
    path, title = PAGES[name]
    page.goto(f"{url}/{path}")
    page.wait_for_selector(CHART, timeout=90_000)
    page.wait_for_load_state("networkidle")
    assert page.locator("h1").first.inner_text().strip() == title, name
    assert page.locator('[data-testid="stException"]').count() == 0, name
    target = shots / f"demo-{name}{suffix}.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 20_000, f"{name}: screenshot looks blank"


def check_tiles(page: Any, con: duckdb.DuckDBPyConnection, today: date) -> dict[str, str]:
    want = expected.served_money(con, TEACHERS, USD_PER_HOUR)
    health = expected.serve_health(con, None, None)
    shown = shown_metrics(page)
    assert {k: shown[k] for k in ("Teacher cost avoided", "Student + fallback cost", "Flywheel spend")} == {
        "Teacher cost avoided": ui.usd(want["avoided_usd"]),
        "Student + fallback cost": ui.usd(want["student_fallback_usd"]),
        "Flywheel spend": ui.usd(want["flywheel_usd"]),
    }
    assert shown["Net saved"] == ui.usd(want["net_saved_usd"])
    assert shown["Student share"] == ui.pct(want["student_share"])
    assert shown["Requests served"] == f"{health['requests']:,}"
    assert shown["Fallback rate"] == ui.pct(health["fallback_rate"])
    assert shown["p95 latency"] == ui.ms(health["p95_ms"])
    # the served day and the flywheel's spend are both today; the logged traffic nets to zero
    assert shown["Break-even"] == (str(today) if want["net_saved_usd"] > 0 else "not yet")
    assert shown["Quality held"] == "1 of 1"
    return shown


def choose_range(page: Any, option: str, title: str, before: dict[str, Any]) -> dict[str, Any]:
    """Pick a time range in the sidebar, wait for the page to redraw, return the chart's new axis."""
    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name=option, exact=True).click()
    page.get_by_text(re.compile(rf"^{option} \(\d{{4}}-\d\d-\d\d to ")).first.wait_for(timeout=60_000)
    deadline = time.monotonic() + 30
    while (after := axis(page, title)) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    page.wait_for_load_state("networkidle")
    return after


def test_a_demo_warehouse_in_chromium(
    demo_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("PREFECT_UI_URL", "http://127.0.0.1:4200")
    warehouse = demo_home / "warehouse.duckdb"
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        days = expected.data_days(con)
    finally:
        con.close()
    # the demo's served day: the day the fixture ran it (read from the data, so a run that crosses
    # midnight does not expect the next day)
    today = days[-1]
    shots = screenshot_dir(tmp_path)
    with (
        running_dashboard(demo_home, warehouse, demo_home / "flywheel.demo.yaml") as url,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            for name in PAGES:
                open_page(page, url, name, shots)
            open_page(page, url, "overview", shots)
            con = duckdb.connect(str(warehouse), read_only=True)
            try:
                check_tiles(page, con, today)
            finally:
                con.close()
            everything = axis(page, "Cumulative savings")
            assert everything["range"] == [pd.Timestamp(days[0]) - HALF_DAY, pd.Timestamp(today) + HALF_DAY]
            (cut,) = everything["breaks"]  # June 2025 .. today: one long gap, cut out
            assert [pd.Timestamp(b).date() for b in cut] == [
                days[-2] + timedelta(days=1),
                today - timedelta(1),
            ]
            last_day = choose_range(page, "Last day", "Cumulative savings", everything)
            page.screenshot(path=str(shots / "demo-overview-last-day.png"), full_page=True)
            assert last_day == {
                "range": [pd.Timestamp(today) - HALF_DAY, pd.Timestamp(today) + HALF_DAY],
                "breaks": [],
            }
        finally:
            browser.close()
