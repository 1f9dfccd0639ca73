"""Evaluation speed: score N eval examples with a 3.7M-parameter student, the teacher and the gate.

Trains the `scratch-tiny` student of the demo support-routing workload for one short epoch (so it
stops generating like a trained model does), then times `evaluate_predictors` on N eval examples with
the student and the replayed teacher: generation, metrics through `evaluate`, 1,000-resample bootstrap
intervals overall and per slice. Target (issue 6): N=1,000 in under 30 s on 2 CPU cores.
`--untrained` skips training and times a randomly initialised tiny Llama (hidden 256, 4 layers)
greedily generating `--new-tokens` tokens per example instead.

    .venv/bin/python bench/evaluate_speed.py [--examples 1000] [--untrained] [--new-tokens 8] [--threads 1]

Measured on the shared 2-core dev box (Nov 2026, other jobs running, load average 3-5): trained
scratch-tiny (4.46M params, ~30 prompt tokens, <= 7 new tokens, batch 16) 6.6 s for 1,000 examples
with `--threads 1`, but 79-94 s with torch's default 2 threads (OpenMP threads spin against the other
jobs); untrained 3.69M Llama, 87 prompt + 8 new tokens, batch 32, `--threads 1`: 23.2 s.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

from flywheel.config import StudentConfig, load_config  # noqa: E402
from flywheel.demo import demo_config_path, generate_demo_traffic  # noqa: E402
from flywheel.evaluate.runner import ReplayPredictor, evaluate_predictors, metric_module  # noqa: E402
from flywheel.pricing import PriceCatalog  # noqa: E402
from flywheel.records import Example, Prediction  # noqa: E402

WORKLOAD = "support-routing"


def trained_student(train: list[Example], val: list[Example], out: Path) -> Any:
    from flywheel.train.candidate import train_candidate
    from flywheel.train.student import load_student

    workload = load_config(demo_config_path()).workload(WORKLOAD)
    candidate = StudentConfig(name="scratch-tiny", kind="scratch", size="tiny", epochs=1.0)
    trained = train_candidate(candidate, workload, train, val, out_dir=out, snapshot_id=None, warehouse=None)
    student = load_student(trained.path)
    student.name = "student"
    return student, trained.params


class UntrainedLlama:
    """A randomly initialised tiny Llama over byte tokens: batched greedy generation, fixed length."""

    name = "student"

    def __init__(self, new_tokens: int, batch_size: int = 32) -> None:
        import torch
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=2048,
            hidden_size=256,
            intermediate_size=688,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            tie_word_embeddings=True,
        )
        self.model = LlamaForCausalLM(config).eval()
        self.new_tokens = new_tokens
        self.batch_size = batch_size

    def predict(self, examples: list[Example]) -> list[Prediction]:
        import torch

        out = []
        for start in range(0, len(examples), self.batch_size):
            batch = examples[start : start + self.batch_size]
            ids = [list(e.messages[-1]["content"].encode()[-96:]) for e in batch]
            width = max(len(i) for i in ids)
            input_ids = torch.tensor([[0] * (width - len(i)) + i for i in ids])
            mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids])
            started = time.perf_counter()
            with torch.inference_mode():
                self.model.generate(
                    input_ids=input_ids,
                    attention_mask=mask,
                    max_new_tokens=self.new_tokens,
                    min_new_tokens=self.new_tokens,
                    do_sample=False,
                    pad_token_id=0,
                )
            latency = (time.perf_counter() - started) * 1000 / len(batch)
            out += [
                Prediction(
                    {"role": "assistant", "content": "billing"}, None, len(i), self.new_tokens, latency
                )
                for i in ids
            ]
        return out


class Recorder:
    """Keeps the student's predictions to report its prompt and completion lengths."""

    name = "student"

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.predictions: list[Prediction] = []

    def predict(self, examples: list[Example]) -> list[Prediction]:
        answered = self.inner.predict(examples)
        self.predictions += answered
        return answered

    def mean(self, field: str) -> float:
        return sum(getattr(p, field) for p in self.predictions) / max(len(self.predictions), 1)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--untrained", action="store_true")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the student's)")
    parser.add_argument("--student-batch", type=int, default=None, help="generation batch (default: 16)")
    args = parser.parse_args()
    from flywheel.train.fixtures import demo_examples

    workload = load_config(demo_config_path()).workload(WORKLOAD)
    with tempfile.TemporaryDirectory() as tmp:
        generate_demo_traffic(Path(tmp), seed=0, size=int((args.examples + 600) * 1.15))
        examples = demo_examples(Path(tmp), WORKLOAD)
        evaluation, train, val = examples[: args.examples], examples[args.examples :][:500], examples[-100:]
        if len(evaluation) < args.examples:
            raise SystemExit(f"only {len(evaluation)} clean examples generated")
        metric_module(workload.task)  # load `evaluate` (a one-off ~8 s import) outside the timing
        started = time.perf_counter()
        if args.untrained:
            student, params = UntrainedLlama(args.new_tokens), None
            params = sum(p.numel() for p in student.model.parameters())
        else:
            student, params = trained_student(train, val, Path(tmp) / "models")
        prepared = time.perf_counter() - started
        if args.student_batch:
            student.batch_size = args.student_batch
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        started, cpu = time.perf_counter(), _cpu_seconds()
        recorder = Recorder(student)
        result = evaluate_predictors(
            [recorder, ReplayPredictor(model="gpt-4o-mini")], evaluation, workload, prices=PriceCatalog.load()
        )
        elapsed, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    scored = result.models["student"]
    import torch

    settings = {k: getattr(student, k, None) for k in ("batch_size", "max_new_tokens", "max_prompt_tokens")}
    settings["torch_threads"] = torch.get_num_threads()
    print(
        json.dumps(
            {
                "examples": result.n_examples,
                "student": "untrained tiny Llama" if args.untrained else "trained scratch-tiny (1 epoch)",
                "params": params,
                "prepare_seconds": round(prepared, 1),
                "evaluate_seconds": round(elapsed, 2),
                "evaluate_cpu_seconds": round(cpu, 2),  # user+sys over all threads: load-independent
                "student_predict_seconds": round(scored.wall_seconds, 2),
                "student_generation": settings,
                "student_mean_prompt_tokens": round(recorder.mean("prompt_tokens"), 1),
                "student_mean_completion_tokens": round(recorder.mean("completion_tokens"), 2),
                "student_tokens_per_second": round(scored.tokens_per_second or 0, 1),
                "student_latency_ms_mean": round(scored.latency_ms_mean, 2),
                "student_cost_per_1k_cpu_2core": scored.cost_per_1k,
                "teacher_cost_per_1k": result.models["teacher"].cost_per_1k,
                "student_accuracy": [scored.primary.value, scored.primary.ci_low, scored.primary.ci_high],
                "target_seconds": 30,
            },
            indent=2,
        )
    )
    figure("evaluate_speed", f"evaluate {result.n_examples:,} examples incl. bootstrap CIs",
           round(elapsed, 2), "s", target="< 30 s", passed=elapsed < 30)  # fmt: skip


if __name__ == "__main__":
    main()
