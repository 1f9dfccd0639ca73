"""Snips acceptance: intent + slot extraction to JSON through the whole loop, scored on gold.

    .venv/bin/python bench/snips.py [--data ../shared/data/snips] [--out DIR] [--epochs N] [--limit N]

1. `flywheel recipe snips` writes the workload config: the train_<Intent>_full.json files are the
   production traffic, read by the `snips` connector (each utterance answered {"intent", "slots"}
   from its annotated spans), with a json_schema of the intents and slot names; validate_<Intent>.json
   (700 utterances) is held out.
2. `flywheel --config ... run -w snips`: ingest -> curate -> label (replay) -> train the MiniLM
   encoder-extractor (token tagger + choice heads) -> evaluate and gate -> costs, through Prefect.
3. `flywheel recipe-score snips`: the promoted champion on the validate files against gold: JSON
   validity (schema-checked), slot-level micro F1 over (slot, value) pairs, intent accuracy, and cost
   per 1k requests vs the gpt-4o-mini-priced teacher.
Targets: validity >= 0.99 and slot F1 >= 0.85. Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    bench_env,
    ci_text,
    cost_lines,
    figure,
    flywheel,
    latest_model,
    loop_lines,
    passed,
    recipe_parser,
    run_dir,
    score,
    workload_row,
)

BENCH = "snips"


def main() -> int:
    parser = recipe_parser(__doc__, "snips", "Override the recipe's epochs")
    parser.add_argument("--limit", type=int, default=None, help="A seeded subset of the training files")
    args = parser.parse_args()
    if not any(args.data.glob("train_*_full.json")) or not any(args.data.glob("validate_*.json")):
        print(f"skip: Snips train_*_full.json / validate_*.json not found under {args.data}")
        return 0
    with run_dir(args.out, "bench-snips-") as out:
        return run_bench(args, out)


def run_bench(args: argparse.Namespace, out: Path) -> int:
    env = bench_env(out)
    started = time.monotonic()
    options = [*(["--epochs", str(args.epochs)] if args.epochs else []),
               *(["--limit", str(args.limit)] if args.limit else [])]  # fmt: skip
    written, _ = flywheel("recipe", "snips", "--data", args.data, "--out", out, *options, env=env)
    config = Path(written["config_path"])
    run, run_s = flywheel("--config", config, "run", "-w", "snips", env=env)
    turn = run["turns"]["snips"]
    promoted = turn.get("decision") in ("promote", "promote_partial")  # the champion, scored on all traffic
    model = None if promoted else latest_model(config, "snips", env)
    result = score(config, "snips", args.data, env, model)
    report(turn, run_s, result, time.monotonic() - started, config, written)
    return 0


def report(turn: dict, run_s: float, result: dict, total_s: float, config: Path, written: dict) -> None:
    student, teacher = result["student"], result["teacher"]
    metrics = student["metrics"]
    validity, slot_f1 = metrics["json_validity"][0], student["slot_f1"]
    notes = written.get("notes", {})
    print("Snips through `flywheel run` (train_*_full.json as production traffic, validate_*.json held out)")
    print(f"config: {config} (recipe snips; {notes.get('intents')} intents, {notes.get('slots')} slot types)")
    for line in loop_lines(turn, run_s):
        print(line)
    shown = "" if result["promoted"] else " (NOT promoted)"
    print(f"held-out validate files ({result['n']:,} utterances, gold spans), {result['model_id']}{shown}:")
    print(f"  JSON validity (schema-checked) {ci_text(metrics['json_validity'])}")
    pr = f"precision {student['slot_precision']:.4f}, recall {student['slot_recall']:.4f}"
    print(f"  slot F1 {slot_f1:.4f} ({pr}; micro over (slot, value) pairs: {student['pairs']})")
    print(f"  intent accuracy {student['intent_accuracy']:.4f}; field F1 (intent + slots) "
          f"{ci_text(metrics['field_f1'])}; exact match {ci_text(metrics['exact_match'])}")  # fmt: skip
    print(f"  teacher ({teacher['model']}; logged answers = gold spans) slot F1 {teacher['slot_f1']:.4f}")
    for line in cost_lines(result):
        print("  " + line)
    ok_valid, ok_f1 = validity >= 0.99, slot_f1 >= 0.85
    verdict = f"validity >= 0.99: {passed(ok_valid)}; slot F1 >= 0.85: {passed(ok_f1)}"
    print(f"targets: {verdict}; promoted: {result['promoted']}; total {total_s:.0f} s")
    teacher_validity = teacher["metrics"]["json_validity"][0]
    figure(BENCH, "student JSON validity on validate files", validity, baseline=teacher_validity,
           ratio=round(validity / teacher_validity, 4), target=">= 0.99", passed=ok_valid)  # fmt: skip
    figure(BENCH, "student slot F1 on validate files vs gold", round(slot_f1, 4), baseline=teacher["slot_f1"],
           ratio=round(slot_f1 / teacher["slot_f1"], 4), target=">= 0.85", passed=ok_f1)  # fmt: skip
    cost_ratio = round(student["cost_per_1k"] / teacher["cost_per_1k"], 5)
    figure(BENCH, "cost per 1k requests", student["cost_per_1k"], "USD", baseline=teacher["cost_per_1k"],
           ratio=cost_ratio)  # fmt: skip
    figure(BENCH, "flywheel run wall time", round(run_s, 1), "s")
    note = f"flywheel run {run_s:.0f} s; gate {turn['decision']}"
    workload_row(result, ["json_validity", "slot_f1", "intent_accuracy"], note=note)


if __name__ == "__main__":
    raise SystemExit(main())
