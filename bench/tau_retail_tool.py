"""tau-bench retail multi-turn agent traffic: the schema-tool student on held-out tasks.

    .venv/bin/python bench/tau_retail_tool.py [--data ../shared/data/tau-bench-retail]
        [--train-tasks 12] [--test-tasks 6] [--epochs 1.5] [--max-length 320] [--write BENCHMARKS.md]

1. The tau-retail recipe (flywheel/recipes/tau_retail.py) turns each task into the conversation an
   agent following the policy has, executing every tool call against the task's own database copy:
   one logged request per assistant step (16 tools offered, tool results in the history).
2. Split BY TASK: training conversations come from a seeded sample of the traffic tasks, test ones
   from the recipe's held-out tasks (the last 100 of tasks_train.py; the first `--test-tasks`).
3. Train `schema-tool` with `train_candidate`, load it through its bundle and answer the raw
   held-out requests (system prompt included: the bundle and the student drop it).
4. Score on tool-call turns with the project's tool-call metrics (function-name accuracy, arguments
   exact among right names, exact call; bootstrap 95% CIs), and say how the text turns went (the
   student writes no text: it should pick "reply in text", which serve hands to the teacher).
Targets (issue 19): name accuracy >= 0.85 on tool-call turns, argument exact match >= 0.6.
"""

from __future__ import annotations

import argparse
import io
import random
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchlib import DATA_ROOT, figure, passed
from bfcl_simple import Tee, ci, replace_section, report_progress

BENCH = "tau_retail_tool"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA_ROOT / "tau-bench-retail")
    parser.add_argument("--train-tasks", type=int, default=12)
    parser.add_argument("--test-tasks", type=int, default=6)
    parser.add_argument("--epochs", type=float, default=1.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=320, help="Question + conversation tokens")
    parser.add_argument("--chooser", choices=("bi", "cross"), default="bi")
    parser.add_argument("--chooser-max-length", type=int, default=256, help="Chooser input tokens")
    parser.add_argument("--write", type=Path, default=None, help="Replace this section of BENCHMARKS.md")
    args = parser.parse_args()
    if not (args.data / "env" / "tasks_train.py").is_file():
        print(f"skip: tau-bench retail not found under {args.data}")
        return 0
    buffer = io.StringIO()
    with redirect_stdout(Tee(sys.stdout, buffer)):
        started = time.monotonic()
        run(args)
        print(f"total {time.monotonic() - started:.0f} s")
    if args.write:
        options = (f"--train-tasks {args.train_tasks} --test-tasks {args.test_tasks} --epochs {args.epochs:g}"
                   f" --max-length {args.max_length} --chooser {args.chooser}"
                   f" --chooser-max-length {args.chooser_max_length}")  # fmt: skip
        command = f"`.venv/bin/python bench/tau_retail_tool.py {options}`"
        replace_section(args.write, BENCH, f"{command}\n\n```\n{buffer.getvalue().strip()}\n```\n")
    return 0


def examples_of(env, tasks, prefix: str) -> list:
    from flywheel.recipes.tau_retail import conversation
    from flywheel.records import Example

    out = []
    for task in tasks:
        for record in conversation(env, task):
            request, meta = record["request"], record["metadata"]
            out.append(Example(
                example_id=f"{prefix}-{meta['task_index']}-{meta['turn']}", workload_id="tau-retail",
                messages=request["messages"], target=record["response"]["choices"][0]["message"],
                slice=meta["step"], tools=request["tools"], request=request,
            ))  # fmt: skip
    return out


def run(args: argparse.Namespace) -> None:
    from flywheel.bundle import load_predictor
    from flywheel.config import StudentConfig, WorkloadConfig
    from flywheel.recipes.tau_env import load_env
    from flywheel.recipes.tau_recipe import HELD_OUT
    from flywheel.train import train_candidate

    env = load_env(args.data)
    traffic, held = env.tasks[:-HELD_OUT], env.tasks[-HELD_OUT:]
    train_tasks = random.Random(args.seed).sample(traffic, min(args.train_tasks, len(traffic)))
    train = examples_of(env, train_tasks, "train")
    test = gold_of(examples_of(env, held[: args.test_tasks], "test"))
    calls = [e for e in test if e.gold != "[]"]
    print(f"tau-bench retail: {len(train_tasks)} training tasks ({len(train)} assistant steps); "
          f"{args.test_tasks} held-out tasks ({len(test)} steps, {len(calls)} tool-call turns)")  # fmt: skip
    workload = WorkloadConfig(id="tau-retail", task="tool_call")
    kind_options = {"max_length": args.max_length, "chooser_max_length": args.chooser_max_length,
                    "chooser": args.chooser, "chooser_group": 16 if args.chooser == "bi" else 4}  # fmt: skip
    student = StudentConfig(name="schema-tool", kind="schema-tool", epochs=args.epochs, batch_size=16,
                            max_seq_length=args.max_length,
                            options={"val_examples": 0, "kind_options": kind_options})  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-tau-") as tmp:
        started = time.monotonic()
        trained = train_candidate(student, workload, train, [], out_dir=Path(tmp), snapshot_id=None,
                                  warehouse=None, progress=report_progress)  # fmt: skip
        print(f"trained {trained.model_id} in {time.monotonic() - started:.0f} s on CPU")
        predictor = Memo(load_predictor(trained.path))
        decision = partial(predictor, workload, test)  # first: its wall time prices the student
        score(predictor, workload, calls, [e for e in test if e.gold == "[]"])
        print(decision)


class Memo:
    """The loaded predictor, answering each held-out step once (scored twice: tool turns, then the
    gate and cascade over all steps); everything else (name, manifest) is the predictor's own."""

    def __init__(self, predictor) -> None:
        self.predictor, self.answers = predictor, {}

    def __getattr__(self, name: str):
        return getattr(self.predictor, name)

    def predict(self, examples: list) -> list:
        missing = [e for e in examples if e.example_id not in self.answers]
        for example, answer in zip(missing, self.predictor.predict(missing) if missing else [], strict=True):
            self.answers[example.example_id] = answer
        return [self.answers[e.example_id] for e in examples]


def gold_of(examples: list) -> list:
    """The examples with their canonical answer as gold ("[]" for a text turn)."""
    from dataclasses import replace

    from flywheel.answers import AnswerSpec, read_message

    spec = AnswerSpec(task="tool_call")
    return [replace(e, gold=read_message(spec, e.target, e.request).value) for e in examples]


def score(predictor, workload, calls: list, texts: list) -> None:
    from flywheel.evaluate.runner import evaluate_predictors

    result = evaluate_predictors([predictor], calls, workload, reference="gold", n_resamples=1000)
    model = result.models[predictor.name]
    print(f"held-out tool-call turns ({len(calls)}), through the bundle predictor on raw requests:")
    for name in ("tool_name_accuracy", "arguments_exact", "tool_call_exact"):
        estimate = model.get(name)
        print(f"  {name} {ci(estimate)}")
    print(f"  latency {model.latency_ms_mean:.1f} ms/request mean (p95 {model.latency_ms_p95:.1f})")
    answered = predictor.predict(texts)
    chose_text = sum(not p.message.get("tool_calls") for p in answered)
    print(f"held-out text turns ({len(texts)}): the student chose 'reply in text' (-> teacher) on "
          f"{chose_text} ({chose_text / max(len(texts), 1):.2%})")  # fmt: skip
    name_acc = model.get("tool_name_accuracy").value
    args_exact = model.get("arguments_exact").value or 0.0  # undefined when no name is right
    ok_name, ok_args = name_acc >= 0.85, args_exact >= 0.6
    print(f"targets: name accuracy >= 0.85: {passed(ok_name)}; argument exact >= 0.6: {passed(ok_args)}")
    figure(BENCH, "name accuracy on held-out tool-call turns", round(name_acc, 4), target=">= 0.85",
           passed=ok_name)  # fmt: skip
    figure(BENCH, "arguments exact (right name), held-out", round(args_exact, 4), target=">= 0.6",
           passed=ok_args)  # fmt: skip
    figure(BENCH, "exact call on held-out tool-call turns", round(model.get("tool_call_exact").value, 4))


def partial(predictor, workload, test: list) -> str:
    """The gate on every held-out step (text turns included) against the replayed teacher, then the
    calibrated cascade (flywheel/evaluate/partial.py): the share of all steps the student answers
    while the mix still meets the gate's target, as `flywheel evaluate` would decide it. Returns
    the lines to print (after the tool-call figures)."""
    from flywheel.answers.claims import claims_of
    from flywheel.evaluate.partial import CascadeSettings, decide_with_cascade
    from flywheel.evaluate.runner import ReplayPredictor, evaluate_predictors
    from flywheel.pricing import PriceCatalog
    from flywheel.recipes.tau_retail import MODEL

    teacher = ReplayPredictor("teacher", model=MODEL)  # the request as sent, counted at catalog price
    result = evaluate_predictors([predictor, teacher], test, workload, reference="gold", n_resamples=1000,
                                 prices=PriceCatalog.load())  # fmt: skip
    claims = claims_of(predictor, workload.task)
    settings = CascadeSettings(workload.task, result.slices, 1000, 0, claims={predictor.name: claims})
    decision = decide_with_cascade(workload.gate, [result.models[predictor.name]], result.models["teacher"],
                                   None, settings, reference=result.reference)  # fmt: skip
    cascade = next((c for c in decision.cascades if c["model"] == predictor.name), None)
    head = (f"gate on all {len(test)} held-out steps (reference {result.reference}): {decision.decision}; "
            f"{decision.summary}")  # fmt: skip
    if cascade is None:
        return f"{head}\n  no cascade (the gate set no target)"
    figure(BENCH, "partial promotion coverage (share of all held-out steps)", round(cascade["coverage"], 4))
    return (f"{head}\n  cascade ({cascade['claims']}, {cascade['metric']} floor {cascade['floor']}): "
            f"coverage {cascade['coverage']:.2%} at threshold {cascade['threshold']} "
            f"(mix {cascade['value']}, CI low {cascade['ci_low']})")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
