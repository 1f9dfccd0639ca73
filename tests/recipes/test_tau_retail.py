"""tau-bench retail tasks as multi-turn agent logs (flywheel/recipes/tau_retail.py): a tiny environment
in tau-bench's layout (tools importing tau_bench.envs.tool, tasks importing tau_bench.types), and 20
real tasks through the real ingest and curate (skips without ../shared/data/tau-bench-retail)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import duckdb
import orjson
import pytest

from flywheel.config import WorkloadConfig
from flywheel.curate import curate_workload
from flywheel.ingest import ingest_paths
from flywheel.recipes.tau_env import TauDataError, load_env
from flywheel.recipes.tau_retail import conversation, summarize, write_logs
from flywheel.store.db import Warehouse
from tests.recipes.conftest import real_data

TOOL_CODE = {
    "find_user_id_by_email": (
        "email",
        'return next((u for u, p in data["users"].items() if p["email"] == email), "Error: user not found")',
    ),
    "get_user_details": ("user_id", 'return json.dumps(data["users"][user_id])'),
    "get_order_details": ("order_id", 'return json.dumps(data["orders"][order_id])'),
    "cancel_pending_order": (
        "order_id, reason",
        "\n        ".join(
            (
                'order = data["orders"][order_id]',
                'if order["status"] != "pending":',
                '    return "Error: non-pending order cannot be cancelled"',
                'order["status"] = "cancelled"',
                "return json.dumps(order)",
            )
        ),
    ),
}
TASK = """    Task(
        annotator="synthetic",
        user_id="ann_lee_1",
        instruction="Your name is Ann Lee and your email is ann@example.com. You are calm. {what}",
        actions=[Action(name="cancel_pending_order", kwargs={{"order_id": "#W1", "reason": "{reason}"}})],
        outputs=[],
    ),
"""


def tiny_env(root: Path, reasons: tuple[str, ...] = ("no longer needed", "ordered by mistake")) -> Path:
    tools = root / "env" / "tools"
    tools.mkdir(parents=True)
    (root / "env" / "data").mkdir()
    schemas, names = [], []
    for name, (params, body) in TOOL_CODE.items():
        cls = "".join(part.title() for part in name.split("_"))
        names.append(cls)
        schemas.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "parameters": {
                        "type": "object",
                        "properties": {p.strip(): {"type": "string"} for p in params.split(",")},
                    },
                },
            }
        )
        info = json.dumps(schemas[-1])
        (tools / f"{name}.py").write_text(
            f"import json\nfrom tau_bench.envs.tool import Tool\n\n\nclass {cls}(Tool):\n    @staticmethod\n"
            f"    def invoke(data, {params}):\n        {body}\n\n    @staticmethod\n"
            f"    def get_info():\n        return {info}\n"
        )
    (tools / "__init__.py").write_text(
        "".join(f"from .{n} import {c}\n" for n, c in zip(TOOL_CODE, names, strict=True))
        + f"ALL_TOOLS = [{', '.join(names)}]\n"
    )
    (root / "tools.json").write_text(json.dumps(schemas))
    (root / "env" / "wiki.md").write_text("# Retail agent policy\nAuthenticate first.\n")
    user = {
        "name": {"first_name": "Ann", "last_name": "Lee"},
        "email": "ann@example.com",
        "address": {"zip": "10001"},
        "orders": ["#W1"],
        "payment_methods": {
            "credit_card_9": {
                "source": "credit_card",
                "brand": "visa",
                "last_four": "4242",
                "id": "credit_card_9",
            }
        },
    }
    order = {
        "order_id": "#W1",
        "user_id": "ann_lee_1",
        "status": "pending",
        "items": [],
        "payment_history": [
            {"transaction_type": "payment", "amount": 12.5, "payment_method_id": "credit_card_9"}
        ],
    }
    for table, rows in (("users", {"ann_lee_1": user}), ("orders", {"#W1": order}), ("products", {})):
        (root / "env" / "data" / f"{table}.json").write_text(json.dumps(rows))
    tasks = "".join(TASK.format(what=f"Cancel order #W1 because {r}. ", reason=r) for r in reasons)
    (root / "env" / "tasks_train.py").write_text(
        f"from tau_bench.types import Task, Action\n\nTASKS_TRAIN = [\n{tasks}]\n"
    )
    return root


def test_a_task_becomes_one_logged_request_per_agent_step_with_real_tool_results(tmp_path: Path) -> None:
    env = load_env(tiny_env(tmp_path))
    assert [t.actions[0].kwargs["reason"] for t in env.tasks] == ["no longer needed", "ordered by mistake"]
    assert "tau_bench" not in sys.modules  # the shim is gone once the tools are imported
    records = conversation(env, env.tasks[0])
    steps = [r["metadata"]["step"] for r in records]
    assert steps == ["auth", "lookup", "lookup", "confirm", "action", "report", "closing"]
    assert [r["metadata"]["turn"] for r in records] == list(range(7))
    first = records[0]["request"]
    assert first["messages"][0] == {"role": "system", "content": env.policy} and first["tools"] == env.tools
    assert "ann@example.com" in first["messages"][1]["content"] and "#W1" in first["messages"][1]["content"]
    action = records[4]
    call = action["response"]["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "cancel_pending_order" and action["metadata"]["gold_action"]
    assert action["metadata"]["label"] == [
        {"name": "cancel_pending_order", "arguments": {"order_id": "#W1", "reason": "no longer needed"}}
    ]
    # The next request holds the call and its real output (the tool mutated the task's database).
    after = records[5]["request"]["messages"]
    assert after[-2]["tool_calls"][0]["id"] == call["id"] and after[-1]["tool_call_id"] == call["id"]
    assert json.loads(after[-1]["content"])["status"] == "cancelled"
    assert records[5]["metadata"]["label"] == records[5]["response"]["choices"][0]["message"]["content"]
    # The confirmation names what the policy asks for: the order, the reason, the refund and where.
    confirm = records[3]["response"]["choices"][0]["message"]["content"]
    assert "#W1" in confirm and "$12.50" in confirm and "Visa credit card ending in 4242" in confirm
    # Each task runs on a fresh copy: the second task cancels the same order and succeeds too.
    second = conversation(env, env.tasks[1])
    assert (
        second[4]["metadata"]["action_error"] is None
        and "'cancelled'" in second[5]["response"]["choices"][0]["message"]["content"]
    )


def test_write_logs_and_summary(tmp_path: Path) -> None:
    out = tmp_path / "logs" / "tau.jsonl"
    assert write_logs(tiny_env(tmp_path / "data"), out, limit=1) == 7
    figures = summarize(out)
    assert figures["conversations"] == 1 and figures["logged_steps"] == 7
    assert figures["tool_call_share"] == pytest.approx(4 / 7, abs=1e-3)
    assert (
        figures["prompt_tokens"]["median"] > 0
        and figures["prompt_tokens"]["p90"] >= figures["prompt_tokens"]["median"]
    )


def test_bad_directories_are_named(tmp_path: Path) -> None:
    with pytest.raises(TauDataError, match=r"tools\.json not found"):
        load_env(tmp_path / "missing")
    root = tiny_env(tmp_path / "a")
    tasks = root / "env" / "tasks_train.py"
    tasks.write_text(tasks.read_text().replace('user_id="ann_lee_1",', "user_id=make_id(),", 1))
    with pytest.raises(TauDataError, match=r"tasks_train\.py:\d+: not a literal value"):
        load_env(root)
    root = tiny_env(tmp_path / "b")
    (root / "env" / "tools" / "get_user_details.py").write_text("raise RuntimeError('broken')\n")
    with pytest.raises(TauDataError, match="importing the tools failed"):
        load_env(root)


def test_twenty_real_tasks_ingest_and_curate_as_a_tool_call_workload(tmp_path: Path) -> None:
    data = real_data("tau-bench-retail")
    logs = tmp_path / "tau_retail.jsonl"
    lines = write_logs(data, logs, limit=20)
    figures = summarize(logs)
    warehouse = Warehouse(tmp_path / "warehouse.duckdb")
    started = time.monotonic()
    ingested = ingest_paths(warehouse, [logs], workload_id="tau-retail").as_dict()
    workload = WorkloadConfig(id="tau-retail", task="tool_call", curation={"export": []})
    report = curate_workload(warehouse, workload, home=tmp_path / "home")
    print(
        f"tau-retail 20 tasks: {figures}; ingest {ingested['ingested']}/{lines}, curate kept "
        f"{report.n_out}/{report.n_in}, rejected {report.rejected}, {time.monotonic() - started:.1f}s"
    )
    assert figures["conversations"] == 20 and figures["logged_steps"] == lines
    assert 0.3 < figures["tool_call_share"] < 0.8
    assert ingested["ingested"] == lines and ingested["quarantined"] == 0
    assert report.n_in == lines and report.n_out > 0.8 * lines
    with duckdb.connect(str(warehouse.path), read_only=True) as con:
        requests = [orjson.loads(r) for (r,) in con.execute("SELECT request FROM interactions").fetchall()]
    assert all(len(r["tools"]) == 16 for r in requests)
    assert max(len(r["messages"]) for r in requests) > 20  # multi-turn, tool results included
