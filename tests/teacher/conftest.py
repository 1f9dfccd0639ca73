"""Fixtures for the teacher tests: a fake OpenAI server over real loopback HTTP and small workloads."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from flywheel.config import TeacherConfig, WorkloadConfig
from flywheel.pricing import Price, PriceCatalog
from flywheel.records import Example
from flywheel.store.db import Warehouse
from flywheel.teacher import TeacherClient, make_client
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread

LABELS = ["billing", "shipping", "refund"]
API_KEY = "sk-test-9f3c1e2b7a6d4c5e8f0a1b2c3d4e5f60"
# $1,000 per 1M tokens each way: a 30-token call costs $0.03, so budgets are easy to reason about
PRICES = PriceCatalog({"fake-teacher": Price(1000.0, 1000.0)})


def support_workload(**overrides: Any) -> WorkloadConfig:
    return WorkloadConfig(id="support", task="classification", labels=LABELS, **overrides)


def support_examples(n: int, start: int = 0) -> list[Example]:
    """Ticket i mentions label i % 3, so the keyword oracle answers it deterministically."""
    return [
        Example(
            example_id=f"ex-{i}",
            workload_id="support",
            messages=[
                {"role": "system", "content": "Route the ticket."},
                {"role": "user", "content": f"ticket {i}: question about {LABELS[i % 3]}"},
            ],
            target={"role": "assistant", "content": LABELS[i % 3]},
            label=LABELS[i % 3],
            slice=LABELS[i % 3],
            split="train",
        )
        for i in range(start, start + n)
    ]


@contextmanager
def teacher(
    oracle: Callable[[dict[str, Any]], Any], *, app_options: dict[str, Any] | None = None, **config: Any
) -> Iterator[tuple[TeacherClient, Any]]:
    """A TeacherClient talking real HTTP to a fake server on loopback; yields (client, app)."""
    app = make_fake_openai_app(oracle, **(app_options or {}))
    with serve_in_thread(app) as base_url:
        settings = {"model": "fake-teacher", "concurrency": 8, "timeout_s": 5.0, "max_retries": 6, **config}
        client = make_client(
            TeacherConfig(base_url=base_url, **settings), {"OPENAI_API_KEY": API_KEY}, backoff_base_s=0.01
        )
        with client:
            yield client, app


@pytest.fixture
def warehouse(tmp_path: Path) -> Warehouse:
    return Warehouse(tmp_path / "home" / "warehouse.duckdb")


def count(warehouse: Warehouse, sql: str, params: list[Any] | None = None) -> Any:
    return warehouse.read(lambda con: con.execute(sql, params or []).fetchall())
