"""The demo: realistic traffic for three workloads, then one flywheel turn for each, via Prefect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.flywheel_flow import flywheel_loop
from flywheel.demo import write_demo_setup


@flow(name="flywheel-demo")
def demo_flow(home: str, seed: int = 7, size: int = 1500) -> dict[str, Any]:
    config_path, workloads = write_demo_setup(Path(home), seed=seed, size=size)
    turns = {w: flywheel_loop(w, str(config_path), home) for w in workloads}
    return {"config": str(config_path), "workloads": turns}
