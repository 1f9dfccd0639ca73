"""retrain-check on served traffic whose live agreement collapsed: it triggers and, with
`auto_rollback`, hands the workload back to the teacher with a Prefect artifact and a promotions row."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from flywheel.registry import Registry
from flywheel.serve.spool import SpoolWriter
from flywheel.store.db import Warehouse

pytestmark = pytest.mark.slow
LABELS = ["billing", "refund", "shipping"]
CURATION = {"expectations": False, "export": [], "max_client_share": None, "max_slice_share": None}
WORDS = [f"{a}{b}" for a in ("mar", "ven", "tol", "quis", "bran", "dor") for b in ("ak", "el", "im", "os")]


def completion(label: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-x", "object": "chat.completion", "created": int(time.time()), "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": label},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
    }  # fmt: skip


def served_call(i: int) -> dict[str, Any]:
    """The champion answers 'billing' where the teacher says 'refund' three times in four."""
    text = "ticket: " + " ".join(random.Random(i).sample(WORDS, 8)) + f" ({i})"
    student = "refund" if i % 4 == 0 else "billing"
    return {
        "flywheel_spool": 1, "id": f"call-{i}", "ts": time.time(), "workload_id": "support",
        "client_id": None, "request": {"model": "support", "messages": [{"role": "user", "content": text}]},
        "response": completion(student), "served_by": "student", "model": "support-v1",
        "fallback_reason": None, "latency_ms": 3.0, "prompt_tokens": 9, "completion_tokens": 1,
        "cost_usd": 0.0, "teacher_response": completion("refund"),
        "metadata": {"route": "student", "shadow": "agree" if student == "refund" else "disagree"},
    }  # fmt: skip


def test_a_collapsed_live_agreement_rolls_back_to_the_teacher(prefect_harness: None, tmp_path: Path) -> None:
    from prefect.client.orchestration import get_client

    from flows.retrain_check import retrain_check

    home = tmp_path / "home"
    writer = SpoolWriter(home / "spool")
    for i in range(60):
        writer.append(served_call(i))
    writer.close()
    workload = {
        "id": "support", "task": "classification", "labels": LABELS, "curation": CURATION,
        "schedule": {"auto_rollback": True, "rollback_days": 1},
    }  # fmt: skip
    config = tmp_path / "flywheel.yaml"
    config.write_text(yaml.safe_dump({"home": str(home), "workloads": [workload]}))
    warehouse = Warehouse(home / "warehouse.duckdb")
    (home / "models" / "support-v1").mkdir(parents=True)
    warehouse.write(
        lambda con: con.execute(
            "INSERT INTO models (model_id, workload_id, name, kind, path, created_at) "
            "VALUES ('support-v1', 'support', 'tiny', 'scratch', 'models/support-v1', now())"
        )
    )
    Registry(warehouse, home).promote("support-v1", "test champion")

    decision = retrain_check("support", str(config), str(home), retrain=False)
    assert decision["trigger"] and "shadow_agreement<0.9" in decision["reasons"]
    assert decision["rollback_action"]["action"] == "rollback"
    assert Registry(warehouse, home).champion("support") is None
    con = duckdb.connect(str(home / "warehouse.duckdb"), read_only=True)
    try:
        (reason,) = con.execute("SELECT reason FROM v_promotions WHERE action = 'rollback'").fetchone()
        shadow = con.execute(
            "SELECT count(*) FROM v_shadow_agreement WHERE workload_id = 'support'"
        ).fetchone()
    finally:
        con.close()
    assert reason.startswith("auto_rollback: live agreement of support-v1") and shadow == (1,)

    async def artifact_keys() -> set[str]:
        async with get_client() as client:
            return {a.key for a in await client.read_artifacts() if a.key}

    assert "rollback-support" in asyncio.run(artifact_keys())
