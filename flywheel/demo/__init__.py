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


def write_demo_setup(home: Path, seed: int = 7, size: int = 1500) -> tuple[Path, list[str]]:
    """Generate demo traffic under `home/demo-data` and a config pointing at it (`home/flywheel.demo.yaml`).

    The packaged config names its sources relative to a checkout; the written copy makes them absolute
    so flows started from any directory (a Prefect worker, a test) read the same files.
    """
    import yaml

    home = home.resolve()
    manifest = generate_demo_traffic(home / "demo-data", seed=seed, size=size)
    config = yaml.safe_load(demo_config_path().read_text())
    config["home"] = str(home)
    for workload in config["workloads"]:
        workload["sources"] = [
            {"path": str(home / "demo-data" / f"{workload['id']}.jsonl"), "format": "openai"}
        ]
    path = home / "flywheel.demo.yaml"
    header = f"# Written by `flywheel demo` from {demo_config_path().name} (seed {seed}, size {size}).\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))
    return path, list(manifest.workloads)


__all__ = [
    "RATES",
    "WORKLOAD_IDS",
    "DemoManifest",
    "WorkloadManifest",
    "demo_config_path",
    "generate_demo_traffic",
    "write_demo_setup",
]
