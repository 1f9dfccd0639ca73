"""Teacher noise on BANKING77: what relabeling with a majority vote recovers from wrong logged answers.

    .venv/bin/python bench/banking77_noise.py [--data DIR] [--limit 3000] [--noise 0.1] [--k 5]

A seeded random subset of train.csv (--limit rows, 3 epochs at batch 16: CPU-bounded so that
`make bench` fits in an hour on 2 cores) is the production traffic, with exactly --noise of its logged
answers replaced by a random wrong intent (`flywheel recipe banking77 --noise`). Each case is one
`flywheel run` on it:
  clean    (with --cases clean,replay,relabel) the same subset without noise: the ceiling;
  replay   the noisy logged answers are the labels (label mode replay);
  relabel  curation, then `--label-mode relabel` against a live teacher with k-vote majority: a fake
           OpenAI-compatible server on loopback (flywheel.testing.noisy_teacher) that knows gold and is
           wrong on --teacher-error of its calls, independently per call, priced as gpt-4o-mini.
For each case: the training labels' accuracy against gold, and the trained student's accuracy on the
3,080 test.csv utterances against gold. A k=1 labeling pass (no training) shows what the vote adds.
Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchlib import (  # noqa: E402
    DATA_ROOT,
    bench_env,
    ci_text,
    figure,
    flywheel,
    latest_model,
    run_dir,
    score,
)

BENCH = "banking77_noise"
KEY_ENV = "FLYWHEEL_BENCH_TEACHER_KEY"


def user_text(messages: list[dict[str, Any]]) -> str:
    return next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), "")


def training_label_accuracy(home: Path, gold: dict[str, str]) -> dict[str, Any]:
    """Share of the train+val examples whose training label (after the label stage) is gold."""
    from flywheel.store.db import Warehouse
    from flywheel.train.data import load_training_data

    warehouse = Warehouse(home / "warehouse.duckdb")
    data = load_training_data(warehouse, "banking77")
    examples = data.train + data.val
    right = sum(e.label == gold.get(user_text(e.messages).strip()) for e in examples)
    cost = warehouse.read(
        lambda con: con.execute(
            "SELECT coalesce(sum(calls), 0), coalesce(sum(cost_usd), 0) FROM label_runs "
            "WHERE workload_id = 'banking77' AND mode = 'relabel'"
        ).fetchone()
    )
    return {
        "examples": len(examples),
        "label_accuracy": right / max(len(examples), 1),
        "relabeled": data.relabeled,
        "teacher_calls": int(cost[0]),
        "teacher_usd": float(cost[1]),
    }


def single_vote_accuracy(config: Path, base_url: str, gold: dict[str, str]) -> float:
    """Relabel the relabel case's train+val examples once more with k=1 (in memory, nothing stored)."""
    from flywheel.config import load_config
    from flywheel.datasets import latest_snapshot_id, load_examples
    from flywheel.pricing import PriceCatalog
    from flywheel.store.db import Warehouse
    from flywheel.teacher import label_examples, make_client

    loaded = load_config(config)
    workload = loaded.workload("banking77")
    teacher = loaded.teacher.model_copy(update={"k_votes": 1, "base_url": base_url, "prompt_version": "k1"})
    warehouse = Warehouse(loaded.warehouse_path(loaded.home_dir()))
    examples = load_examples(
        warehouse, "banking77", latest_snapshot_id(warehouse, "banking77"), ("train", "val")
    )
    client = make_client(teacher, {KEY_ENV: "loopback"})
    prices = PriceCatalog.load(loaded.prices)
    # warehouse=None: relabel then keeps answers in memory (this check must not change the run's labels)
    report = label_examples(examples, workload, "relabel", client=client, warehouse=None, prices=prices)  # type: ignore[arg-type]
    texts = {e.example_id: user_text(e.messages).strip() for e in examples}
    right = sum(label.label == gold.get(texts[label.example_id]) for label in report.labels)
    return right / max(len(examples), 1)


def run_case(case: str, args: argparse.Namespace, out: Path, base_url: str, gold: dict[str, str]) -> dict:
    home = out / case
    env = bench_env(home, {KEY_ENV: "loopback"})
    options = ["--limit", str(args.limit), "--seed", str(args.seed), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size)]  # fmt: skip
    if case != "clean":
        options += ["--noise", str(args.noise)]
    if case == "relabel":
        options += ["--teacher-url", base_url, "--k-votes", str(args.k), "--api-key-env", KEY_ENV]
    written, _ = flywheel("recipe", "banking77", "--data", args.data, "--out", home, *options, env=env)
    config = Path(written["config_path"])
    mode = ["--label-mode", "relabel"] if case == "relabel" else []
    run, run_s = flywheel("--config", config, "run", "-w", "banking77", *mode, env=env)
    labels = training_label_accuracy(Path(written["home"]), gold)
    model = latest_model(config, "banking77", env)
    result = score(config, "banking77", args.data, env, model)
    return {"case": case, "config": config, "run_s": run_s, "turn": run["turns"]["banking77"],
            "labels": labels, "notes": written["notes"], "result": result}  # fmt: skip


def read_gold(data: Path) -> tuple[dict[str, str], list[str]]:
    with (data / "train.csv").open(newline="", encoding="utf-8") as handle:
        gold = {row["text"].strip(): row["category"] for row in csv.DictReader(handle)}
    return gold, json.loads((data / "categories.json").read_text(encoding="utf-8"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT / "banking77")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=3000, help="Training rows (CPU budget)")
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=16, help="More steps for a small subset")
    parser.add_argument("--noise", type=float, default=0.1, help="Share of logged answers corrupted")
    parser.add_argument("--teacher-error", type=float, default=0.1, help="Relabel teacher's error rate")
    parser.add_argument("--k", type=int, default=5, help="Votes per item in relabel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cases", default="replay,relabel", help="Add `clean` for the noise-free ceiling")
    args = parser.parse_args()
    if not all((args.data / n).exists() for n in ("train.csv", "test.csv", "categories.json")):
        print(f"skip: BANKING77 not found under {args.data}")
        return 0
    from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread
    from flywheel.testing.noisy_teacher import NoisyGoldTeacher

    gold, labels = read_gold(args.data)
    oracle = NoisyGoldTeacher(gold, labels, args.teacher_error, seed=args.seed)
    started = time.monotonic()
    cases = {}
    app = make_fake_openai_app(oracle, model="gpt-4o-mini")
    with run_dir(args.out, "bench-noise-") as out, serve_in_thread(app) as base_url:
        for case in args.cases.split(","):
            cases[case] = run_case(case, args, out, base_url, gold)
        k1 = single_vote_accuracy(cases["relabel"]["config"], base_url, gold) if "relabel" in cases else None
    report(cases, k1, oracle, args, time.monotonic() - started)
    return 0


def report(cases: dict, k1: float | None, oracle: Any, args: argparse.Namespace, total_s: float) -> None:
    first = next(iter(cases.values()))
    rows = first["notes"]["rows"]
    setup = f"{args.epochs:g} epochs at batch {args.batch_size}, MiniLM encoder-classifier"
    print(f"BANKING77 teacher noise: {rows:,} of train.csv's rows as traffic (seed {args.seed}), {setup}. "
          "A CPU-bounded subset (`make bench` fits in an hour on 2 cores): every accuracy here is below "
          "the full-data run's.")  # fmt: skip
    stats = oracle.stats
    wrong = f"{stats['wrong']:,} of {stats['calls']:,} calls ({stats['wrong'] / max(stats['calls'], 1):.2%})"
    print(f"logged answers corrupted: exactly {args.noise:.0%}; relabel teacher: fake gpt-4o-mini on "
          f"loopback, wrong on {wrong}, k={args.k} majority vote")  # fmt: skip
    header = f"{'case':<8} {'train labels vs gold':>21} {'student accuracy on test.csv vs gold':>44}"
    print(f"{header} {'run s':>6}  teacher")
    for name, case in cases.items():
        labels, result = case["labels"], case["result"]
        accuracy = result["student"]["metrics"]["accuracy"]
        calls = labels["teacher_calls"]
        spend = f"{calls:,} calls, ${labels['teacher_usd']:.4f}" if calls else "replay (free)"
        cells = f"{name:<8} {labels['label_accuracy']:>21.4f} {ci_text(accuracy):>44}"
        print(f"{cells} {case['run_s']:>6.0f}  {spend}")
        baseline = _baseline(cases, name)
        figure(BENCH, f"{name}: student accuracy on test.csv vs gold", accuracy[0], baseline=baseline,
               ratio=_ratio(accuracy[0], baseline))  # fmt: skip
        figure(BENCH, f"{name}: training-label accuracy vs gold", round(labels["label_accuracy"], 4))
    if k1 is not None:
        relabeled = cases["relabel"]["labels"]["label_accuracy"]
        print(f"majority vote: one teacher sample per item gives labels {k1:.4f} accurate; "
              f"k={args.k} gives {relabeled:.4f}")  # fmt: skip
        figure(BENCH, "k=1 relabel: training-label accuracy vs gold", round(k1, 4))
    if "replay" in cases and "relabel" in cases:
        scores = {n: cases[n]["result"]["student"]["metrics"]["accuracy"][0] for n in ("replay", "relabel")}
        gain = scores["relabel"] - scores["replay"]
        print(f"relabel + vote vs plain replay of the noisy logs: {gain:+.4f} student accuracy on gold")
    print(f"total {total_s:.0f} s")


def _baseline(cases: dict, name: str) -> float | None:
    """Each case's baseline: plain replay of the noisy logs (clean and replay: none)."""
    if name != "relabel" or "replay" not in cases:
        return None
    return cases["replay"]["result"]["student"]["metrics"]["accuracy"][0]


def _ratio(value: float, baseline: float | None) -> float | None:
    return round(value / baseline, 4) if baseline else None


if __name__ == "__main__":
    raise SystemExit(main())
