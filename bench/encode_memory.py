"""Memory of the encoder student's tokenized training set: one Dataset.from_dict over Python lists of
token ids (before) vs chunks turned into Arrow as they are tokenized (flywheel.train.encoder).

    .venv/bin/python bench/encode_memory.py [--data ../shared/data/banking77] [--copies 4]

BANKING77's train.csv utterances (repeated --copies times, as a bigger snapshot would be) are tokenized
by the MiniLM tokenizer; the figure is the peak of Python heap (tracemalloc) plus Arrow's allocations
while the dataset is built. Skips cleanly when the data is absent.
"""

from __future__ import annotations

import argparse
import csv
import gc
import sys
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa

from flywheel.records import Example


def examples(path: Path, copies: int) -> list[Example]:
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        Example(
            example_id=f"{copy}-{i}",
            workload_id="banking77",
            messages=[{"role": "user", "content": row["text"]}],
            target={"role": "assistant", "content": row["category"]},
            label=row["category"],
        )
        for copy in range(copies)
        for i, row in enumerate(rows)
    ]


def measure(build) -> tuple[int, float, object]:  # type: ignore[no-untyped-def]
    gc.collect()
    arrow_before = pa.total_allocated_bytes()
    tracemalloc.start()
    started = time.perf_counter()
    dataset = build()
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak + pa.total_allocated_bytes() - arrow_before, seconds, dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/banking77"))
    parser.add_argument("--copies", type=int, default=4)
    args = parser.parse_args()
    train = Path(args.data) / "train.csv"
    if not train.exists():
        print(f"skipped: {train} not found")
        return
    from datasets import Dataset
    from transformers import AutoTokenizer

    from flywheel.train.encoder import encode_examples, resolve_encoder_base
    from flywheel.train.formatting import classifier_text, example_label

    data = examples(train, args.copies)
    label2id = {label: i for i, label in enumerate(sorted({example_label(e) for e in data}))}
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_base(None))

    def whole() -> Dataset:
        encoded = tokenizer([classifier_text(e) for e in data], truncation=True, max_length=64)
        return Dataset.from_dict({
            "input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
            "labels": [label2id[example_label(e)] for e in data],
            "length": [len(ids) for ids in encoded["input_ids"]],
        })  # fmt: skip

    before, before_s, a = measure(whole)
    after, after_s, (b, _) = measure(lambda: encode_examples(tokenizer, data, label2id, 64))
    assert a.to_dict() == b.to_dict(), "the chunked dataset differs"  # type: ignore[attr-defined]
    print(f"{len(data)} examples, {sum(b['length'])} tokens; identical datasets")  # type: ignore[index]
    print(f"one from_dict : peak {before / 2**20:7.1f} MiB, {before_s:.1f} s")
    print(f"chunked Arrow : peak {after / 2**20:7.1f} MiB, {after_s:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
