"""Demo traffic: realistic LLM logs for three workloads, with the faults real logs have.

`generate_demo_traffic(out_dir, seed, size)` writes the logs, their gold answers and `planted.json`
(the ground truth of every planted fault); `demo_config_path()` is the packaged `flywheel.demo.yaml`
that describes the three workloads.
"""

from __future__ import annotations

from pathlib import Path

from flywheel.demo.traffic import RATES, DemoManifest, WorkloadManifest, generate_demo_traffic

WORKLOAD_IDS = ("support-routing", "order-extraction", "tool-assistant")


def demo_config_path() -> Path:
    """The packaged demo config (three workloads reading `demo-data/<workload>.jsonl`)."""
    return Path(__file__).with_name("flywheel.demo.yaml")


__all__ = [
    "RATES",
    "WORKLOAD_IDS",
    "DemoManifest",
    "WorkloadManifest",
    "demo_config_path",
    "generate_demo_traffic",
]
