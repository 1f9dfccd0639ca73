"""The demo: realistic traffic for three workloads, one flywheel turn for each, then a day of fresh
traffic served by the promoted students (the teacher backing them up), via Prefect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.flywheel_flow import flywheel_loop
from flows.tasks import serve_demo_day_task
from flywheel.demo import write_demo_setup


@flow(name="flywheel-demo")
def demo_flow(home: str, seed: int = 7, size: int = 1500) -> dict[str, Any]:
    config_path, workloads = write_demo_setup(Path(home), seed=seed, size=size)
    turns = {w: flywheel_loop(w, str(config_path), home) for w in workloads}
    served = serve_demo_day_task(str(config_path), home, seed, max(1, size // 5))
    return {"config": str(config_path), "workloads": turns, "served": served}
