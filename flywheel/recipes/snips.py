"""Snips as production traffic: each annotated utterance of train_<Intent>_full.json is one logged
extraction call answered {"intent", "slots"} (see connectors/snips.py); validate_<Intent>.json is held out.

Without options the source is the dataset's own files, read by the `snips` connector (nothing is
copied). `limit` writes a seeded random subset, still in the Snips span format, to
<out>/traffic/train_subset.json. The workload's json_schema enumerates the intents and slot names
found in the training files; a slot value is a string, or a list of strings when the slot repeats.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from connectors.snips import Utterance, iter_utterances, load_document
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
from flywheel.records import Example, canonical_dumps

NAME = "snips"
TRAIN = "train_*_full.json"
HELD_OUT = "validate_*.json"
HEADER = (
    "# Snips as production traffic: written by `flywheel recipe snips` from the template\n"
    "# flywheel/recipes/snips.yaml (see its comments). Run: flywheel --config THIS run -w snips\n"
)


def utterances(paths: list[Path]) -> list[Utterance]:
    """Every well-formed utterance of the files (malformed ones are the connector's to quarantine)."""
    return [u for path in paths for u in iter_utterances(path) if isinstance(u, Utterance)]


def answer_schema(intents: list[str], slots: list[str]) -> dict[str, Any]:
    value = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 2}]}
    return {
        "type": "object",
        "properties": {
            "intent": {"type": "string", "enum": intents},
            "slots": {
                "type": "object",
                "properties": {slot: value for slot in slots},
                "additionalProperties": False,
            },
        },
        "required": ["intent", "slots"],
        "additionalProperties": False,
    }


def subset_file(paths: list[Path], out: Path, options: RecipeOptions) -> tuple[Path, dict[str, Any]]:
    """A seeded random subset of the training utterances, written back in the Snips span format."""
    items = [
        (intent, item) for path in paths for intent, group in load_document(path).items() for item in group
    ]
    rng = random.Random(options.seed)
    limit = min(options.limit or len(items), len(items))
    chosen = sorted(rng.sample(range(len(items)), limit))
    document: dict[str, list[Any]] = {}
    for index in chosen:
        intent, item = items[index]
        document.setdefault(intent, []).append(item)
    traffic = out / "traffic"
    traffic.mkdir(parents=True, exist_ok=True)
    path = traffic / "train_subset.json"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path, {"rows": limit, "of": len(items), "seed": options.seed}


def write(data: Path, out: Path, options: RecipeOptions) -> RecipeOutput:
    if options.noise:
        raise ValueError("snips: teacher-noise injection is implemented for banking77 only")
    paths = sorted(data.glob(TRAIN))
    seen = utterances(paths)
    intents = sorted({u.intent for u in seen})
    slots = sorted({name for u in seen for name in u.slots})
    template = load_template(NAME)
    workload: dict[str, Any] = template["workloads"][0]
    workload["json_schema"] = answer_schema(intents, slots)
    source = workload["sources"][0]
    notes: dict[str, Any] = {"intents": len(intents), "slots": len(slots), "utterances": len(seen)}
    if options.limit is not None:
        path, derived = subset_file(paths, out, options)
        source["path"] = str(path.resolve())
        notes |= derived
    else:
        source["path"] = str(data.resolve() / TRAIN)
    mapping = source["mapping"]
    mapping["system_prompt"] = fill(
        mapping["system_prompt"], intents=", ".join(intents), slots=", ".join(slots)
    )
    config_path, config = finish_config(template, out, options, HEADER)
    held_out = [str(p) for p in sorted(data.glob(HELD_OUT))]
    return RecipeOutput(
        NAME, workload["id"], config_path, config.home_dir(), [source["path"]], held_out, notes
    )


def gold_examples(data: Path, workload: WorkloadConfig) -> list[Example]:
    """The validate files as eval examples: the request the application would send, and the gold JSON."""
    system = system_prompt(workload)
    examples = []
    for index, item in enumerate(utterances(sorted(data.glob(HELD_OUT)))):
        gold = canonical_dumps(item.answer()).decode()
        examples.append(
            Example(
                example_id=example_id("validate", index, item.text),
                workload_id=workload.id,
                messages=chat(system, item.text),
                target={"role": "assistant", "content": item.answer_json()},
                label=gold,
                gold=gold,
                slice=item.intent,
                split="eval",
            )
        )
    return examples


RECIPE = Recipe(
    name=NAME,
    workload_id="snips",
    description="Snips intent + slot extraction to JSON (7 intents); validate files held out",
    write=write,
    gold=gold_examples,
    required=(TRAIN, HELD_OUT),
)
