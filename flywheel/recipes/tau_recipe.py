"""`flywheel recipe tau-retail`: tau-bench retail tasks as an agent workload's traffic, with held-out gold.

The first 500 - HELD_OUT tasks (or a seeded `--limit N` of them) are written as multi-turn OpenAI logs
to <out>/traffic/tau_retail.jsonl (tau_retail.write_logs: generated, so they always go under --out,
never next to the data); the last HELD_OUT tasks are never logged, and `gold_examples` builds their
steps (the raw request of every assistant step, the gold answer) to score the promoted student.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from flywheel.answers import AnswerSpec, read_message
from flywheel.config import WorkloadConfig
from flywheel.recipes.common import (
    Recipe,
    RecipeOptions,
    RecipeOutput,
    example_id,
    finish_config,
    load_template,
)
from flywheel.recipes.tau_env import REQUIRED, Task, load_env
from flywheel.recipes.tau_retail import CLIENT_ID, MODEL, conversation, summarize
from flywheel.records import Example

NAME = "tau-retail"
HELD_OUT = 100  # the last tasks of tasks_train.py: never traffic, only gold
HEADER = (
    "# tau-bench retail as an agent's production traffic: written by `flywheel recipe tau-retail` from\n"
    "# flywheel/recipes/tau_retail.yaml (see its comments). Run: flywheel --config THIS run -w tau-retail\n"
)


def split_tasks(tasks: list[Task], options: RecipeOptions) -> tuple[list[Task], list[Task]]:
    """(traffic tasks, held-out tasks): the last HELD_OUT are held out; `limit` samples the rest."""
    if len(tasks) <= HELD_OUT:
        raise ValueError(f"tau-retail: {len(tasks)} tasks, need more than the {HELD_OUT} held out")
    traffic, held = tasks[:-HELD_OUT], tasks[-HELD_OUT:]
    if options.limit is not None and options.limit < len(traffic):
        picked = sorted(random.Random(options.seed).sample(range(len(traffic)), options.limit))
        traffic = [traffic[i] for i in picked]
    return traffic, held


def write(data: Path, out: Path, options: RecipeOptions) -> RecipeOutput:
    if options.noise:
        raise ValueError("tau-retail: --noise is not supported (the answers are executed gold actions)")
    env = load_env(data)
    traffic, held = split_tasks(env.tasks, options)
    path = out / "traffic" / "tau_retail.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with path.open("wb") as handle:
        for task in traffic:
            for record in conversation(env, task, MODEL, options.seed):
                handle.write(orjson.dumps(record) + b"\n")
                lines += 1
    template = load_template("tau_retail")
    workload: dict[str, Any] = template["workloads"][0]
    workload["sources"][0]["path"] = str(path.resolve())
    config_path, config = finish_config(template, out, options, HEADER)
    notes = {"tasks": len(traffic), "held_out_tasks": len(held), "logged_steps": lines} | summarize(path)
    return RecipeOutput(
        NAME, workload["id"], config_path, config.home_dir(), [str(path)],
        [f"{data / 'env' / 'tasks_train.py'} (tasks {held[0].index}-{held[-1].index})"], notes,
    )  # fmt: skip


def gold_examples(data: Path, workload: WorkloadConfig) -> list[Example]:
    """Every assistant step of the held-out tasks: the request as logged, the gold answer."""
    env = load_env(data)
    spec = AnswerSpec.of(workload)
    examples = []
    for task in env.tasks[-HELD_OUT:]:
        for record in conversation(env, task):
            request = record["request"]
            message = record["response"]["choices"][0]["message"]
            canonical = read_message(spec, message, request).value
            meta = record["metadata"]
            examples.append(
                Example(
                    example_id=example_id("held-out", meta["task_index"] * 1000 + meta["turn"], CLIENT_ID),
                    workload_id=workload.id,
                    messages=request["messages"],
                    target=message,
                    label=canonical,
                    gold=canonical,
                    slice=meta["step"],
                    split="eval",
                    tools=request["tools"],
                    request=request,
                )
            )
    return examples


RECIPE = Recipe(
    name=NAME,
    workload_id="tau-retail",
    description=f"tau-bench retail agent traffic (16 tools, multi-turn); the last {HELD_OUT} tasks held out",
    write=write,
    gold=gold_examples,
    required=REQUIRED,
    data_name="tau-bench-retail",
)
