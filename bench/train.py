"""Student training figures on the demo support-routing workload (generated here, nothing to download).

1. Throughput: training tokens/s of flywheel's path (`train_candidate`, what `flywheel train` runs:
   scratch tokenizer + tiny Llama, TRL SFTTrainer with assistant-only loss, per-step loss logging,
   checkpoints, progress) against a bare TRL SFTTrainer on the same model, tokenizer and rows.
   Both count non-padding tokens over the training loop; rounds alternate to even out a shared CPU.
   Target ratio >= 0.9. Then packing (TRL "bfd", padding-free) against no packing.
2. Demo classification: the default scratch-tiny student (3 epochs) trained on the clean train split;
   training time and agreement with the teacher labels on the eval split. Target < 300 s, >= 0.9.

    .venv/bin/python bench/train.py [--steps 30] [--rounds 3] [--skip-throughput] [--skip-demo]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

from flywheel.config import StudentConfig, load_config  # noqa: E402
from flywheel.demo import demo_config_path, generate_demo_traffic  # noqa: E402
from flywheel.records import Example  # noqa: E402
from flywheel.train.fixtures import demo_examples, split_examples  # noqa: E402

WORKLOAD_ID = "support-routing"


def flywheel_run(train: list[Example], workload, out: Path, steps: int, packing: bool) -> float:
    from flywheel.train import train_candidate

    options = {
        "max_steps": steps,
        "packing": packing,
        "val_examples": 0,
        "postprocess": {"measure_examples": 1},
    }
    candidate = StudentConfig(name=f"tiny-{'packed' if packing else 'padded'}", options=options)
    trained = train_candidate(
        candidate, workload, train, [], out_dir=out, snapshot_id=None, warehouse=None, resume=False
    )
    return trained.tokens_per_second


def bare_trl_run(train: list[Example], out: Path, steps: int) -> float:
    """The same model and rows through TRL directly: no flywheel callbacks, logging or checkpoints."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from flywheel.train.causal import tokenizer_corpus
    from flywheel.train.formatting import messages_row
    from flywheel.train.hardware import configure_threads
    from flywheel.train.scratch import build_scratch_model, default_vocab_size, train_tokenizer

    configure_threads()
    tokenizer = train_tokenizer(tokenizer_corpus(train, "classification", False), default_vocab_size("tiny"))
    model = build_scratch_model(tokenizer, "tiny", 256, seed=0)
    rows = Dataset.from_list([messages_row(e, "classification") for e in train])
    args = SFTConfig(
        output_dir=str(out),
        max_steps=steps,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        max_length=256,
        assistant_only_loss=True,
        bf16=False,
        use_cpu=True,
        activation_checkpointing=False,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        include_num_input_tokens_seen="non_padding",
    )
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    output = trainer.train()
    return trainer.state.num_input_tokens_seen / output.metrics["train_runtime"]


def throughput(train: list[Example], workload, work: Path, steps: int, rounds: int) -> dict:
    from flywheel.train.sft import quiet_libraries

    samples: dict[str, list[float]] = {"flywheel": [], "bare_trl": [], "flywheel_packed": []}
    with quiet_libraries():
        for index in range(rounds):
            samples["flywheel"].append(
                flywheel_run(train, workload, work / f"fw{index}", steps, packing=False)
            )
            samples["bare_trl"].append(bare_trl_run(train, work / f"bare{index}", steps))
            samples["flywheel_packed"].append(flywheel_run(train, workload, work / f"pk{index}", steps, True))
    median = {name: statistics.median(values) for name, values in samples.items()}
    result = {
        "steps": steps,
        "rounds": rounds,
        "tokens_per_second": {k: round(v, 1) for k, v in median.items()},
        "samples": {k: [round(v, 1) for v in values] for k, values in samples.items()},
        "flywheel_vs_bare_ratio": round(median["flywheel"] / median["bare_trl"], 3),
        "packing_vs_padding_ratio": round(median["flywheel_packed"] / median["flywheel"], 3),
    }
    print(
        f"training tokens/s (median of {rounds}, {steps} steps): flywheel {median['flywheel']:.0f}, "
        f"bare TRL SFTTrainer {median['bare_trl']:.0f} -> ratio {result['flywheel_vs_bare_ratio']:.2f} "
        "(target >= 0.9)"
    )
    print(
        f"packing: {median['flywheel_packed']:.0f} tokens/s vs {median['flywheel']:.0f} without "
        f"-> {result['packing_vs_padding_ratio']:.2f}x"
    )
    return result


def demo_classification(
    train: list[Example], val: list[Example], evaluation: list[Example], workload, out: Path
):
    from flywheel.train import load_student, train_candidate

    started = time.monotonic()
    trained = train_candidate(
        StudentConfig(name="scratch-tiny"),
        workload,
        train,
        val,
        out_dir=out,
        snapshot_id=None,
        warehouse=None,
        resume=False,
    )
    seconds = time.monotonic() - started
    predictions = load_student(trained.path).predict(evaluation)
    agree = sum(p.message["content"] == e.label for p, e in zip(predictions, evaluation, strict=True))
    agreement = agree / len(evaluation)
    print(
        f"demo {WORKLOAD_ID} scratch-tiny ({trained.params:,} params): trained in {seconds:.0f} s "
        f"on {len(train)} examples, eval agreement with teacher {agreement:.3f} on {len(evaluation)} "
        "(target < 300 s, >= 0.9)"
    )
    return {
        "train_examples": len(train),
        "eval_examples": len(evaluation),
        "train_seconds": round(seconds, 1),
        "eval_agreement": round(agreement, 4),
        "val_exact_match": trained.metrics.get("val_exact_match"),
        "train_tokens_per_second": round(trained.tokens_per_second, 1),
        "generate_tokens_per_second": trained.metrics.get("generate_tokens_per_second"),
        "pass": seconds < 300 and agreement >= 0.9,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=1500, help="Demo records per workload")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    generate_demo_traffic(work / "demo", seed=7, size=args.size)
    train, val, evaluation = split_examples(demo_examples(work / "demo", WORKLOAD_ID))
    workload = load_config(demo_config_path()).workload(WORKLOAD_ID)
    result: dict = {"workload": WORKLOAD_ID}
    if not args.skip_throughput:
        result["throughput"] = throughput(train, workload, work / "throughput", args.steps, args.rounds)
    if not args.skip_demo:
        result["demo_classification"] = demo_classification(
            train, val, evaluation, workload, work / "demo-models"
        )
    print(json.dumps(result))
    report_figures(result)
    return 0


def report_figures(result: dict) -> None:
    if "throughput" in result:
        speed, ratios = result["throughput"]["tokens_per_second"], result["throughput"]
        figure("train", "`flywheel train` vs bare TRL SFTTrainer", speed["flywheel"], "tokens/s",
               baseline=speed["bare_trl"], ratio=ratios["flywheel_vs_bare_ratio"], target=">= 0.9",
               passed=ratios["flywheel_vs_bare_ratio"] >= 0.9)  # fmt: skip
        figure("train", "packing vs no packing", speed["flywheel_packed"], "tokens/s",
               baseline=speed["flywheel"], ratio=ratios["packing_vs_padding_ratio"])  # fmt: skip
    if "demo_classification" in result:
        demo = result["demo_classification"]
        figure("train", f"scratch student, demo support-routing ({demo['train_examples']} examples)",
               demo["train_seconds"], "s", target="< 300 s", passed=demo["train_seconds"] < 300)  # fmt: skip
        figure("train", "scratch student: eval agreement with the teacher", demo["eval_agreement"],
               target=">= 0.9", passed=demo["eval_agreement"] >= 0.9)  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
