"""The dashboard in a real browser: `flywheel dashboard` serves it, headless Chromium loads every page.

Uses Debian's chromium (/usr/bin/chromium; `make test` installs it where it can) through Playwright,
never `playwright install`. A flow writes to the warehouse the whole time. Screenshots land in the
test's tmp dir, or in $FLYWHEEL_SCREENSHOT_DIR when set (keep them as CI artifacts).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.dashboard.conftest import ROOT, rounds_done

CHROMIUM = Path("/usr/bin/chromium")
PAGES = {  # name -> (path, page title)
    "overview": ("", "Flywheel overview"),
    "workload": ("workload?workload=support", "Workload"),
    "runs": ("runs", "Runs"),
    "costs": ("costs", "Costs"),
}
CHART = '[data-testid="stPlotlyChart"]'
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} is absent: `apt-get install -y chromium` (`make test` does it where it can)",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "the dashboard exited"
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never became healthy")


@contextmanager
def running_dashboard(home: Path, warehouse: Path, config: Path | None = None) -> Iterator[str]:
    """`flywheel dashboard --json` over `home`; stopped like a user would (Ctrl-C)."""
    flywheel = Path(sys.executable).parent / "flywheel"  # the console script next to this interpreter
    command = [str(flywheel), "--home", str(home), *(["--config", str(config)] if config else [])]
    command += ["dashboard", "--port", str(free_port()), "--json"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        started = json.loads(process.stdout.readline())
        assert started["warehouse"] == str(warehouse)
        wait_healthy(started["url"], process)
        yield started["url"]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def dashboard_url(fixture_copy: Path) -> Iterator[str]:
    """The dashboard on the fixture warehouse."""
    with running_dashboard(fixture_copy.parent, fixture_copy) as url:
        yield url


def screenshot_dir(tmp_path: Path) -> Path:
    """$FLYWHEEL_SCREENSHOT_DIR (CI keeps it as an artifact), else the test's tmp dir."""
    shots = Path(os.environ.get("FLYWHEEL_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    return shots


@pytest.mark.slow
def test_every_page_draws_its_charts_in_chromium_while_a_flow_writes(
    writing_flow: tuple[Path, subprocess.Popen], dashboard_url: str, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    workdir, writer = writing_flow
    before = rounds_done(workdir)
    shots = screenshot_dir(tmp_path)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            for name, (path, title) in PAGES.items():
                page.goto(f"{dashboard_url}/{path}")
                page.wait_for_selector(CHART, timeout=90_000)
                page.wait_for_load_state("networkidle")
                assert page.locator("h1").first.inner_text().strip() == title, name
                assert page.locator('[data-testid="stException"]').count() == 0, name
                target = shots / f"{name}.png"
                page.screenshot(path=str(target), full_page=True)
                assert target.stat().st_size > 20_000, f"{name}: screenshot looks blank"
        finally:
            browser.close()
    assert writer.poll() is None and rounds_done(workdir) > before, "the flow did not write meanwhile"
