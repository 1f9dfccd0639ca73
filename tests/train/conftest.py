"""Fixtures for student training: small demo datasets and tiny, fast training settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.config import StudentConfig, WorkloadConfig, load_config
from flywheel.demo import demo_config_path, generate_demo_traffic
from flywheel.records import Example
from flywheel.train.fixtures import demo_examples, split_examples


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    generate_demo_traffic(out, seed=3, size=200)
    return out


@pytest.fixture(scope="session")
def demo_workloads() -> dict[str, WorkloadConfig]:
    return {w.id: w for w in load_config(demo_config_path()).workloads}


@pytest.fixture(scope="session")
def routing(demo_dir: Path) -> tuple[list[Example], list[Example], list[Example]]:
    return split_examples(demo_examples(demo_dir, "support-routing"))


def tiny_options(**extra: object) -> dict[str, object]:
    """Options that keep a test run to a handful of steps and little post-training measurement."""
    postprocess = {"measure_examples": 2, **extra.pop("postprocess", {})}  # type: ignore[dict-item]
    return {"max_steps": 4, "save_steps": 2, "val_examples": 4, "postprocess": postprocess, **extra}


def tiny_student(name: str = "scratch-tiny", **fields: object) -> StudentConfig:
    """A student that trains a few small batches: enough to exercise the machinery, fast on 2 CPUs."""
    options = tiny_options(**fields.pop("options", {}))  # type: ignore[arg-type]
    return StudentConfig(name=name, batch_size=4, max_seq_length=96, options=options, **fields)
