from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboards.data import WAREHOUSE_ENV
from tests.costs.conftest import fixture_copy, fixture_db

__all__ = ["fixture_copy", "fixture_db"]
ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "dashboards" / "app.py"
PAGES = ("overview", "workload", "runs", "costs")


def run_page(page: str, widgets: dict[str, Any] | None = None, **query: str) -> AppTest:
    """Run the dashboard app on one page, as a reader's browser would, and fail on any exception.

    `widgets` presets widget values by key (e.g. the sidebar's "time_range"). AppTest runs the
    entrypoint (app.py: st.navigation and the shared sidebar) on the first run only, and the page
    alone after a switch, so the sidebar's choice is made before that first run.
    """
    app = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in query.items():
        app.query_params[key] = value
    for key, value in (widgets or {}).items():
        app.session_state[key] = value
    app.run()
    if page != "overview":
        app.switch_page(f"pages/{page}.py")
        app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def figures(app: AppTest) -> list[dict[str, Any]]:
    """The Plotly figures a page drew, as JSON."""
    return [json.loads(chart.proto.spec) for chart in app.get("plotly_chart")]


def figure(app: AppTest, title_prefix: str) -> dict[str, Any]:
    found = [f for f in figures(app) if f["layout"]["title"]["text"].startswith(title_prefix)]
    assert len(found) == 1, [f["layout"]["title"]["text"] for f in figures(app)]
    return found[0]


def table_with(app: AppTest, column: str) -> Any:
    """The one st.dataframe of the page that has `column` (a page shows several)."""
    found = [t.value for t in app.dataframe if column in t.value.columns]
    assert len(found) == 1, [list(t.value.columns) for t in app.dataframe]
    return found[0]


def values(encoded: Any) -> list[Any]:
    """A trace's x/y: Plotly ships numeric arrays as base64 ({"dtype", "bdata"})."""
    if isinstance(encoded, dict) and "bdata" in encoded:
        return np.frombuffer(base64.b64decode(encoded["bdata"]), dtype=np.dtype(encoded["dtype"])).tolist()
    return list(encoded)


@pytest.fixture
def on_fixture(fixture_db: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the dashboard at the (read-only) fixture warehouse."""
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_db))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_UI_URL", raising=False)
    return fixture_db


def rounds_done(workdir: Path) -> int:
    progress = workdir / "progress"
    return len(progress.read_text().split()) if progress.exists() else 0


@pytest.fixture
def writing_flow(fixture_copy: Path, tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    """A process ingesting served traffic into the warehouse in many short transactions."""
    workdir = tmp_path / "writer"
    workdir.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.dashboard.flow_writer", str(fixture_copy), str(workdir), "180"],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while rounds_done(workdir) < 1:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the writer made no progress"
        time.sleep(0.05)
    try:
        yield workdir, process
    finally:
        (workdir / "stop").touch()
        process.wait(timeout=30)
