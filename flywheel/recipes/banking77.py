"""BANKING77 as production traffic: train.csv's `category` is the production model's answer.

Without options the workload's source is the dataset's own train.csv (nothing is copied). `limit`
and `noise` derive new traffic in <out>/traffic/train.csv: a seeded random subset, and/or exactly
round(noise x rows) answers replaced by a different random intent (a teacher that is wrong at a known
rate); <out>/traffic/noise.json records what was changed. test.csv is held out: `gold_examples`
reads it to score the promoted student against gold.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.recipes.common import (
    Recipe,
    RecipeOptions,
    RecipeOutput,
    chat,
    example_id,
    fill,
    finish_config,
    load_template,
    system_prompt,
)
from flywheel.records import Example

NAME = "banking77"
HEADER = (
    "# BANKING77 as production traffic: written by `flywheel recipe banking77` from the template\n"
    "# flywheel/recipes/banking77.yaml (see its comments). Run: flywheel --config THIS run -w banking77\n"
)


def read_rows(path: Path) -> list[dict[str, str]]:
    """The text,category rows of a BANKING77 CSV; a missing column is an error naming the file."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"text", "category"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
        return list(reader)


def read_labels(data: Path) -> list[str]:
    labels = json.loads((data / "categories.json").read_text(encoding="utf-8"))
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"{data / 'categories.json'}: expected a JSON list of label names")
    return labels


def corrupt(
    rows: list[dict[str, str]], labels: list[str], rate: float, rng: random.Random
) -> tuple[list[dict[str, str]], list[int]]:
    """Copies of `rows` with exactly round(rate x len) answers swapped for a different label."""
    chosen = sorted(rng.sample(range(len(rows)), round(rate * len(rows))))
    out = [dict(row) for row in rows]
    for index in chosen:
        wrong = [label for label in labels if label != out[index]["category"]]
        out[index]["category"] = rng.choice(wrong)
    return out, chosen


def derived_traffic(data: Path, out: Path, labels: list[str], options: RecipeOptions) -> tuple[Path, dict]:
    """Write the subset / noisy copy of train.csv; returns its path and what was done to it."""
    rng = random.Random(options.seed)
    rows = read_rows(data / "train.csv")
    if options.limit is not None and options.limit < len(rows):
        rows = [rows[i] for i in sorted(rng.sample(range(len(rows)), options.limit))]
    noisy, changed = corrupt(rows, labels, options.noise, rng) if options.noise else (rows, [])
    traffic = out / "traffic"
    traffic.mkdir(parents=True, exist_ok=True)
    path = traffic / "train.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "category"])
        writer.writeheader()
        writer.writerows({"text": r["text"], "category": r["category"]} for r in noisy)
    notes = {
        "source": str(data / "train.csv"),
        "rows": len(noisy),
        "seed": options.seed,
        "noise_rate": options.noise,
        "corrupted": len(changed),
        "corrupted_rows": changed,
    }
    (traffic / "noise.json").write_text(json.dumps(notes, indent=1), encoding="utf-8")
    return path, {k: v for k, v in notes.items() if k != "corrupted_rows"}


def write(data: Path, out: Path, options: RecipeOptions) -> RecipeOutput:
    labels = read_labels(data)
    template = load_template(NAME)
    workload: dict[str, Any] = template["workloads"][0]
    workload["labels"] = labels
    source = workload["sources"][0]
    notes: dict[str, Any] = {"labels": len(labels)}
    if options.limit is not None or options.noise:
        path, derived = derived_traffic(data, out, labels, options)
        notes |= derived
    else:
        path = data / "train.csv"
    source["path"] = str(path.resolve())
    mapping = source["mapping"]
    mapping["system_prompt"] = fill(mapping["system_prompt"], labels=", ".join(labels))
    config_path, config = finish_config(template, out, options, HEADER)
    return RecipeOutput(
        NAME,
        workload["id"],
        config_path,
        config.home_dir(),
        [source["path"]],
        [str(data / "test.csv")],
        notes,
    )


def gold_examples(data: Path, workload: WorkloadConfig) -> list[Example]:
    """test.csv as eval examples: the request the application would send, and the gold intent."""
    system = system_prompt(workload)
    return [
        Example(
            example_id=example_id("test", index, row["text"]),
            workload_id=workload.id,
            messages=chat(system, row["text"]),
            target={"role": "assistant", "content": row["category"]},
            label=row["category"],
            gold=row["category"],
            slice=row["category"],
            split="eval",
        )
        for index, row in enumerate(read_rows(data / "test.csv"))
    ]


RECIPE = Recipe(
    name=NAME,
    workload_id="banking77",
    description="BANKING77 intent classification (77 intents); test.csv held out",
    write=write,
    gold=gold_examples,
    required=("train.csv", "test.csv", "categories.json"),
)
