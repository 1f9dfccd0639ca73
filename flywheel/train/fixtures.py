"""Examples built straight from demo traffic and its gold answers, for tests and benchmarks.

The real pipeline gets Examples from a curated snapshot (`flywheel.datasets.load_examples`). Tests and
benches must not wait for curation, so this reads `<workload>.jsonl` + `<workload>.gold.jsonl` written
by `flywheel.demo.generate_demo_traffic`, keeps lines without planted faults, drops the long static
system prompt (the pipeline prunes it too) and uses the gold answer as the teacher label.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from flywheel.records import Example
from flywheel.train.formatting import compact_json

# Faults that make a line unusable as a training example (the curation stage drops them).
UNUSABLE = {
    "error",
    "refusal",
    "empty",
    "truncated",
    "wrong_answer",
    "malformed_answer",
    "malformed_line",
    "exact_duplicate",
    "near_duplicate",
}


def demo_examples(data_dir: Path, workload_id: str, limit: int | None = None) -> list[Example]:
    """Clean Examples of one demo workload, in file order."""
    data_dir = Path(data_dir)
    gold_rows = _read_jsonl(data_dir / f"{workload_id}.gold.jsonl")
    lines = (data_dir / f"{workload_id}.jsonl").read_bytes().splitlines()
    examples = []
    for gold in gold_rows:
        if set(gold["faults"]) & UNUSABLE or gold["answer"] is None:
            continue
        record = orjson.loads(lines[gold["line"] - 1])
        examples.append(_example(workload_id, record["request"], gold))
        if limit is not None and len(examples) >= limit:
            break
    return examples


def split_examples(
    examples: list[Example], val_fraction: float = 0.1, eval_fraction: float = 0.2
) -> tuple[list[Example], list[Example], list[Example]]:
    """A deterministic train/val/eval split by example-id hash."""
    train, val, evaluation = [], [], []
    for example in examples:
        bucket = int(hashlib.sha256(example.example_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if bucket < eval_fraction:
            example.split = "eval"
            evaluation.append(example)
        elif bucket < eval_fraction + val_fraction:
            example.split = "val"
            val.append(example)
        else:
            example.split = "train"
            train.append(example)
    return train, val, evaluation


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def _example(workload_id: str, request: dict[str, Any], gold: dict[str, Any]) -> Example:
    messages = [m for m in request["messages"] if m.get("role") != "system"]
    answer = gold["answer"]
    target, label = _target(answer)
    example_id = hashlib.sha256(compact_json([workload_id, messages]).encode()).hexdigest()[:16]
    return Example(
        example_id=example_id,
        workload_id=workload_id,
        messages=messages,
        target=target,
        label=label,
        gold=label,
        slice=gold.get("slice"),
        tools=request.get("tools"),
        response_format=request.get("response_format"),
    )


def _target(answer: Any) -> tuple[dict[str, Any], str]:
    if isinstance(answer, str):
        return {"role": "assistant", "content": answer}, answer
    if isinstance(answer, dict) and answer.get("type") == "tool_call":
        call = {"name": answer["name"], "arguments": answer.get("arguments") or {}}
        tool_call = {
            "id": "call_0",
            "type": "function",
            "function": {"name": call["name"], "arguments": compact_json(call["arguments"])},
        }
        return {"role": "assistant", "content": None, "tool_calls": [tool_call]}, compact_json(call)
    if isinstance(answer, dict) and answer.get("type") == "text":
        return {"role": "assistant", "content": answer["content"]}, answer["content"]
    text = compact_json(answer)
    return {"role": "assistant", "content": text}, text
