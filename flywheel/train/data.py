"""What a training run reads from the warehouse: the snapshot's train/val examples with the teacher's
best labels applied, synthetic examples added to train, and any captured logprobs for sparse KD.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flywheel.records import Example
from flywheel.store.db import Warehouse


@dataclass
class TrainingData:
    snapshot_id: str | None
    train: list[Example]
    val: list[Example]
    teacher: str | None = None
    teacher_logprobs: dict[str, Any] = field(default_factory=dict)
    relabeled: int = 0
    synthetic: int = 0


def load_training_data(
    warehouse: Warehouse, workload_id: str, snapshot_id: str | None = None
) -> TrainingData:
    """The latest (or given) snapshot's train and val splits, labelled by the teacher stage."""
    from flywheel.datasets import latest_snapshot_id, load_examples
    from flywheel.teacher.labels import latest_labels

    snapshot_id = snapshot_id or latest_snapshot_id(warehouse, workload_id)
    examples = load_examples(warehouse, workload_id, snapshot_id, splits=("train", "val"))
    labels = latest_labels(warehouse, workload_id, snapshot_id)
    data = TrainingData(snapshot_id=snapshot_id, train=[], val=[])
    seen = set()
    for example in examples:
        seen.add(example.example_id)
        label = labels.get(example.example_id)
        if label is not None and label.target:
            data.relabeled += label.mode != "replay"
            example.target, example.label = (
                label.target,
                label.label if label.label is not None else example.label,
            )
        (data.val if example.split == "val" else data.train).append(example)
    data.synthetic = _add_synthetic(data.train, labels, seen, workload_id)
    data.teacher_logprobs = {eid: label.logprobs for eid, label in labels.items() if label.logprobs}
    models = Counter(label.teacher_model for label in labels.values() if label.teacher_model)
    data.teacher = models.most_common(1)[0][0] if models else None
    return data


def _add_synthetic(train: list[Example], labels: dict[str, Any], seen: set[str], workload_id: str) -> int:
    """Synthesized inputs (rare-slice top-ups) are training data only; never validation."""
    added = 0
    for example_id, label in sorted(labels.items()):
        if example_id in seen or not label.synthetic or not label.messages or not label.target:
            continue
        train.append(
            Example(
                example_id=example_id,
                workload_id=workload_id,
                messages=label.messages,
                target=label.target,
                label=label.label,
                slice=label.slice,
                split="train",
                synthetic=True,
            )
        )
        added += 1
    return added
