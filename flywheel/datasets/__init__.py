"""Dataset snapshots: versioned, leakage-free train/val/eval splits of curated examples.

`load_examples(warehouse, workload_id)` is how later stages (labeling, training, evaluation) read a
snapshot; `latest_snapshot_id` says which one is current. Exports (Parquet, HF `datasets`) live in
`flywheel.datasets.export`, which imports `datasets` only when called.
"""

from flywheel.datasets.snapshots import SPLITS, SnapshotRow, latest_snapshot_id, load_examples

__all__ = ["SPLITS", "SnapshotRow", "latest_snapshot_id", "load_examples"]
