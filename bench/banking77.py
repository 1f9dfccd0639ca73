"""BANKING77 acceptance: the whole loop on public data read as production traffic, scored on gold.

    .venv/bin/python bench/banking77.py [--data ../shared/data/banking77] [--out DIR] [--epochs N]

1. `flywheel recipe banking77` writes the workload config: train.csv is the production traffic (its
   `category` column is the production model's answer), test.csv is held out.
2. `flywheel --config ... run -w banking77`: ingest -> curate -> label (replay) -> train the MiniLM
   encoder-classifier -> evaluate and gate -> costs, through Prefect, like any user's workload.
3. `flywheel recipe-score banking77`: the promoted champion on the 3,080 test.csv utterances against
   gold, and cost per 1k requests vs the gpt-4o-mini-priced teacher (cost code: flywheel.evaluate).
Targets: accuracy >= 0.92 (issue 18) and >= 98% cheaper than the teacher. Skips cleanly when the data
is absent.
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

BENCH = "banking77"


def main() -> int:
    parser = recipe_parser(__doc__, "banking77", "Override the recipe's 3 epochs")
    args = parser.parse_args()
    if not all((args.data / name).exists() for name in ("train.csv", "test.csv", "categories.json")):
        print(f"skip: BANKING77 not found under {args.data}")
        return 0
    with run_dir(args.out, "bench-banking77-") as out:
        return run_bench(args, out)


def run_bench(args: argparse.Namespace, out: Path) -> int:
    env = bench_env(out)
    started = time.monotonic()
    recipe = ["recipe", "banking77", "--data", args.data, "--out", out]
    written, _ = flywheel(*recipe, *(["--epochs", str(args.epochs)] if args.epochs else []), env=env)
    config = Path(written["config_path"])
    run, run_s = flywheel("--config", config, "run", "-w", "banking77", env=env)
    turn = run["turns"]["banking77"]
    promoted = turn.get("decision") in ("promote", "promote_partial")
    model = None if promoted else latest_model(config, "banking77", env)
    result = score(config, "banking77", args.data, env, model)
    total_s = time.monotonic() - started
    report(turn, run_s, result, total_s, config)
    return 0


def report(turn: dict, run_s: float, result: dict, total_s: float, config: Path) -> None:
    student, teacher = result["student"], result["teacher"]
    accuracy = student["metrics"]["accuracy"]
    teacher_accuracy = teacher["metrics"]["accuracy"][0]
    print("BANKING77 through `flywheel run` (train.csv as production traffic, test.csv held out)")
    print(f"config: {config} (recipe banking77)")
    for line in loop_lines(turn, run_s):
        print(line)
    shown = "" if result["promoted"] else " (NOT promoted)"
    print(f"held-out test.csv ({result['n']:,} utterances, gold labels), {result['model_id']}{shown}:")
    print(f"  student accuracy {ci_text(accuracy)}, macro-F1 {ci_text(student['metrics']['macro_f1'])}")
    print(f"  teacher ({teacher['model']}; logged answers = gold column) accuracy {teacher_accuracy:.4f}")
    for line in cost_lines(result):
        print("  " + line)
    savings = result["savings_pct"] or 0.0
    ok_acc, ok_cost = accuracy[0] >= 0.92, savings >= 0.98
    verdict = f"accuracy >= 0.92: {passed(ok_acc)}; >= 98% cheaper: {passed(ok_cost)}"
    print(f"targets: {verdict}; promoted: {result['promoted']}; total {total_s:.0f} s")
    ratio = round(accuracy[0] / teacher_accuracy, 4)
    figure(BENCH, "student accuracy on test.csv vs gold", accuracy[0], baseline=teacher_accuracy, ratio=ratio,
           target=">= 0.92", passed=ok_acc)  # fmt: skip
    cost_ratio = round(student["cost_per_1k"] / teacher["cost_per_1k"], 5)
    figure(BENCH, "cost per 1k requests", student["cost_per_1k"], "USD", baseline=teacher["cost_per_1k"],
           ratio=cost_ratio, target=">= 98% cheaper", passed=ok_cost)  # fmt: skip
    figure(BENCH, "flywheel run wall time", round(run_s, 1), "s")
    workload_row(
        result, ["accuracy", "macro_f1"], note=f"flywheel run {run_s:.0f} s; gate {turn['decision']}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
