"""BFCL simple_python: the schema-tool student on functions it never saw in training.

    .venv/bin/python bench/bfcl_simple.py [--data ../shared/data/bfcl-simple] [--epochs N] [--limit N]
                                          [--test-share 0.25] [--seed 0] [--write BENCHMARKS.md]
                                          [--model DIR | --keep DIR]

1. BFCL items -> OpenAI-format logs (flywheel/recipes/bfcl.py) -> examples carrying the raw request.
2. Split BY FUNCTION (seeded): every test function is absent from training.
3. Train the `schema-tool` student (MiniLM chooser + extractive parameter filler) with
   `train_candidate`, as `flywheel run` would, and load it back through its model bundle
   (`load_predictor`: the predictor evaluate and serve use) to answer the raw test requests.
4. Score with the project's tool-call metrics against the gold call (function-name accuracy, exact
   call, arguments exact among right names; bootstrap 95% CIs), and with BFCL's own rule (any
   acceptable value; optional arguments may be omitted). Every one of the items (train included) is
   also answered once to show no schema makes the student fail.
Targets (issue 19): name accuracy >= 0.9, exact call >= 0.6. Skips cleanly when the data is absent.
`--write` replaces this benchmark's section of BENCHMARKS.md with this run's output.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
import time
from collections import Counter
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import DATA_ROOT, figure, passed

BENCH = "bfcl_simple"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT / "bfcl-simple")
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--limit", type=int, default=None, help="Only the first N items (a quick run)")
    parser.add_argument("--test-share", type=float, default=0.25, help="Share of FUNCTIONS held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", type=Path, default=None, help="Replace this section of BENCHMARKS.md")
    parser.add_argument("--model", type=Path, default=None,
                        help="Score this model directory (same split) instead of training")  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None,
                        help="Train into this directory and keep the model (for --model)")  # fmt: skip
    args = parser.parse_args()
    if not (args.data / "BFCL_v4_simple_python.json").is_file():
        print(f"skip: BFCL_v4_simple_python.json not found under {args.data}")
        return 0
    buffer = io.StringIO()
    with redirect_stdout(Tee(sys.stdout, buffer)):
        started = time.monotonic()
        run(args)
        print(f"total {time.monotonic() - started:.0f} s")
    if args.write:
        command = "`.venv/bin/python bench/bfcl_simple.py`"
        replace_section(args.write, BENCH, f"{command}\n\n```\n{buffer.getvalue().strip()}\n```\n")
    return 0


def run(args: argparse.Namespace) -> None:
    from flywheel.bundle import load_predictor
    from flywheel.config import StudentConfig, WorkloadConfig
    from flywheel.recipes.bfcl import load_items
    from flywheel.recipes.bfcl_split import item_example, split_by_function
    from flywheel.train import train_candidate

    items = load_items(args.data)[: args.limit]
    train_items, test_items = split_by_function(items, args.test_share, args.seed)
    index = {item.id: i for i, item in enumerate(items)}
    train = [item_example(i, index[i.id]) for i in train_items]
    test = [item_example(i, index[i.id]) for i in test_items]
    unseen = {e.slice for e in test} - {e.slice for e in train}
    print(f"BFCL simple_python: {len(items)} items; split by function (seed {args.seed}): "
          f"{len(train)} train / {len(test)} test items, {len(unseen)} test functions, "
          "all unseen in training")  # fmt: skip
    workload = WorkloadConfig(id="bfcl-simple", task="tool_call")
    student = StudentConfig(name="schema-tool", kind="schema-tool", epochs=args.epochs, batch_size=16,
                            max_seq_length=512, options={"val_examples": 0})  # fmt: skip
    if args.model is not None:
        predictor = load_predictor(args.model)
        print(f"scoring {args.model} ({predictor.manifest['model_id']}, trained in "
              f"{predictor.manifest['train_seconds']:.0f} s on the same split)")  # fmt: skip
        score(predictor, workload, test, {i.id: i for i in test_items})
        robustness(predictor, [item_example(i, n) for n, i in enumerate(items)])
        return
    with tempfile.TemporaryDirectory(prefix="bench-bfcl-") as tmp:
        started = time.monotonic()
        out_dir = args.keep or Path(tmp)
        trained = train_candidate(
            student, workload, train, [], out_dir=out_dir, snapshot_id=None, warehouse=None
        )
        train_s = time.monotonic() - started
        predictor = load_predictor(trained.path)
        print(f"trained {trained.model_id} ({trained.params / 1e6:.1f}M params) in {train_s:.0f} s on CPU")
        score(predictor, workload, test, {i.id: i for i in test_items})
        robustness(predictor, [item_example(i, n) for n, i in enumerate(items)])


def report_progress(name: str, done: int, total: int) -> None:
    if done % 50 == 0 or done == total:
        print(f"  {name}: step {done}/{total}", flush=True)


def score(predictor, workload, test, by_id) -> None:
    from flywheel.evaluate.runner import evaluate_predictors
    from flywheel.recipes.bfcl_split import acceptable
    from flywheel.train.schematool.data import gold_calls

    result = evaluate_predictors([predictor], test, workload, reference="gold", n_resamples=1000)
    model = result.models[predictor.name]
    figures = {m: model.get(m) for m in ("tool_name_accuracy", "tool_call_exact", "arguments_exact")}
    for name, estimate in figures.items():
        print(f"  {name} {ci(estimate)}")
    oks = []
    for example, prediction in zip(test, model.predictions, strict=True):
        valid = prediction.invalid_reason is None
        calls = [{"name": n, "arguments": a} for n, a in gold_calls(replace_target(example, prediction))]
        oks.append(bool(valid and acceptable(calls, by_id[example.example_id].ground_truth)))
    bfcl = sum(oks) / len(test)
    low, high = bfcl_interval(oks)
    print(f"  exact call by BFCL's rule (any acceptable value, optional may be omitted) {bfcl:.4f} "
          f"(95% CI {low:.4f}-{high:.4f})")  # fmt: skip
    print(f"  latency {model.latency_ms_mean:.1f} ms/request mean (p95 {model.latency_ms_p95:.1f})")
    name_acc, exact = figures["tool_name_accuracy"].value, figures["tool_call_exact"].value
    ok_name, ok_exact = name_acc >= 0.9, max(exact, bfcl) >= 0.6
    print(f"targets: name accuracy >= 0.9: {passed(ok_name)}; exact call >= 0.6: {passed(ok_exact)}"
          f" (gold call {exact:.4f}, BFCL rule {bfcl:.4f})")  # fmt: skip
    figure(BENCH, "name accuracy, unseen functions", round(name_acc, 4), target=">= 0.9", passed=ok_name)
    figure(BENCH, "exact call vs gold call, unseen functions", round(exact, 4), target=">= 0.6",
           passed=exact >= 0.6)  # fmt: skip
    figure(
        BENCH,
        "exact call by BFCL rule, unseen functions",
        round(bfcl, 4),
        target=">= 0.6",
        passed=bfcl >= 0.6,
    )
    figure(
        BENCH, "arguments exact (right name), unseen functions", round(figures["arguments_exact"].value, 4)
    )


def bfcl_interval(oks: list[bool]) -> tuple[float, float]:
    """Percentile bootstrap interval of the share of right calls (1000 resamples, seed 0), as the
    project's metrics get theirs."""
    import numpy as np

    from flywheel.evaluate.bootstrap import percentile_interval, weight_chunks

    right = np.asarray(oks, dtype=float)
    draws = np.concatenate([weights @ right / len(right) for weights in weight_chunks(len(right), 1000, 0)])
    low, high = percentile_interval(draws)
    return float(low or 0.0), float(high or 0.0)


def ci(estimate) -> str:
    if estimate is None or estimate.value is None:
        return "undefined (no example to score)"
    if estimate.ci_low is None:
        return f"{estimate.value:.4f}"
    return f"{estimate.value:.4f} (95% CI {estimate.ci_low:.4f}-{estimate.ci_high:.4f})"


def replace_target(example, prediction):
    from dataclasses import replace

    return replace(example, target=prediction.message)


def robustness(predictor, examples) -> None:
    """Every item's schema once through the served path: errors would be tracebacks in serve."""
    errors, reasons = 0, Counter()
    for example in examples:
        try:
            prediction = predictor.predict([example])[0]
        except Exception as exc:
            errors += 1
            print(f"  ERROR {example.example_id}: {type(exc).__name__}: {exc}")
            continue
        reasons[prediction.invalid_reason or "valid"] += 1
    answered = f"{errors} errors; answers {dict(reasons)}"
    print(f"all {len(examples)} BFCL schemas through the bundle predictor: {answered}")
    figure(BENCH, "schemas answered without error", len(examples) - errors, baseline=len(examples),
           passed=errors == 0)  # fmt: skip


class Tee(io.TextIOBase):
    def __init__(self, *streams: io.TextIOBase) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def replace_section(path: Path, name: str, body: str) -> None:
    """Replace `## name` (up to the next `## `) in the markdown file, or append it."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    section = f"## {name}\n\n{body}\n"
    pattern = re.compile(rf"^## {re.escape(name)}\b.*?(?=^## |\Z)", re.DOTALL | re.MULTILINE)
    new = (
        pattern.sub(lambda _: section, text, count=1)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section
    )
    path.write_text(new)


if __name__ == "__main__":
    raise SystemExit(main())
