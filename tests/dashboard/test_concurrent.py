"""The dashboard keeps working, and shows new rows, while another process writes the warehouse."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from dashboards import data
from dashboards.data import WAREHOUSE_ENV
from tests.dashboard.conftest import PAGES, figures, rounds_done, run_page, table_with


@pytest.mark.slow
def test_pages_render_and_follow_the_data_while_a_flow_writes(
    writing_flow: tuple[Path, subprocess.Popen], fixture_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir, process = writing_flow
    monkeypatch.setenv(WAREHOUSE_ENV, str(fixture_copy))
    requests_seen = []
    started = rounds_done(workdir)
    for _ in range(2):
        for page in PAGES:
            data.clear_cache()  # read the file every time instead of the 5-second cache
            app = run_page(page, **({"workload": "support"} if page == "workload" else {}))
            assert figures(app), page
            assert not [i.value for i in app.info if "busy" in i.value]
            if page == "overview":
                requests_seen.append(
                    int(table_with(app, "quality_held").set_index("workload_id").loc["support", "requests"])
                )
    assert process.poll() is None, "the writer stopped early"
    assert rounds_done(workdir) > started, "the writer never wrote while the pages rendered"
    deadline = time.monotonic() + 20
    while rounds_done(workdir) <= started + 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    data.clear_cache()
    app = run_page("overview")
    latest = int(table_with(app, "quality_held").set_index("workload_id").loc["support", "requests"])
    assert latest > requests_seen[0] >= 700, (requests_seen, latest)
    (workdir / "stop").touch()
    assert process.wait(timeout=30) == 0, process.communicate()[1]
