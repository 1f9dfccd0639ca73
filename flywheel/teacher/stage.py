"""The label stage: what the teacher labels on a snapshot, in which order, or which slices it writes for.

One implementation for `flywheel label`, the flows' label task and `flywheel run`:
- replay: the logged answers become labels (free);
- relabel: the live teacher answers the snapshot's examples, served calls that showed the student wrong
  or unsure first, then rare slices (flywheel/active.py), so a budget that runs out spent where it
  teaches most;
- synthesize: new examples for the slices where served calls went wrong, then the slices curation
  flagged rare, seeded with their hardest training examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flywheel.config import FlywheelConfig
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse

Progress = Any


@dataclass(frozen=True, slots=True)
class LabelRequest:
    """What to label: the mode, the snapshot (None = latest), which splits, the budget."""

    mode: str = "replay"
    snapshot_id: str | None = None
    splits: tuple[str, ...] = ("train", "val")
    max_usd: float | None = None  # None: the teacher config's max_usd
    per_slice: int = 20  # synthesize: new examples per slice


def label_snapshot(
    config: FlywheelConfig,
    warehouse: Warehouse,
    prices: PriceCatalog,
    workload_id: str,
    request: LabelRequest,
    progress: Progress = None,
) -> dict[str, Any]:
    """Run the label stage; the LabelReport's dict plus snapshot id, teacher model and expected gain."""
    from flywheel.active import active_report
    from flywheel.datasets import load_examples
    from flywheel.teacher import make_client

    workload = config.workload(workload_id)
    snapshot_id = snapshot_to_label(warehouse, workload_id, request)
    examples = load_examples(warehouse, workload_id, snapshot_id, splits=request.splits)
    teacher = config.teacher_for(workload_id)
    client = None if request.mode == "replay" else make_client(teacher)
    priorities, gain = (
        ([], None)
        if request.mode == "replay"
        else active_report(warehouse, workload, served_threshold(config, workload_id))
    )
    budget = request.max_usd if request.max_usd is not None else teacher.max_usd
    common = {"client": client, "warehouse": warehouse, "prices": prices, "max_usd": budget}
    try:
        if request.mode == "synthesize":
            report = _synthesize(workload, examples, snapshot_id, priorities, request, common, progress)
        else:
            report = _label(workload, examples, snapshot_id, priorities, request.mode, common, progress)
    finally:
        if client is not None:
            client.close()
    return report.as_dict() | {
        "snapshot_id": snapshot_id,
        "teacher_model": client.model if client is not None else None,
        "expected_gain": gain,
    }


def snapshot_to_label(warehouse: Warehouse, workload_id: str, request: LabelRequest) -> str:
    """The request's snapshot, else the workload's latest; no snapshot is a clear error."""
    from flywheel.datasets import latest_snapshot_id
    from flywheel.store.db import NoSnapshot

    snapshot_id = request.snapshot_id or latest_snapshot_id(warehouse, workload_id)
    if snapshot_id is None:
        raise NoSnapshot(
            f"no dataset snapshot for {workload_id}: run `flywheel curate --workload {workload_id}`"
        )
    return snapshot_id


def relabel_order(
    config: FlywheelConfig, warehouse: Warehouse, workload_id: str, request: LabelRequest
) -> tuple[str, list, Any]:
    """(snapshot id, its examples in the order relabel asks the teacher, the expected gain): what
    the fanned-out label stage (flywheel/teacher/shards.py) cuts into shards."""
    from flywheel.active import active_report, prioritize
    from flywheel.datasets import load_examples

    workload = config.workload(workload_id)
    snapshot_id = snapshot_to_label(warehouse, workload_id, request)
    examples = load_examples(warehouse, workload_id, snapshot_id, splits=request.splits)
    priorities, gain = active_report(warehouse, workload, served_threshold(config, workload_id))
    return snapshot_id, prioritize(examples, priorities), gain


def served_threshold(config: FlywheelConfig, workload_id: str) -> float:
    """The student's confidence threshold in `flywheel serve` (what counts as unsure)."""
    from flywheel.config.serve import ServeConfig

    serve = config.serve or ServeConfig()
    return serve.threshold(workload_id)


def _label(
    workload: Any,
    examples: list,
    snapshot_id: str,
    priorities: list,
    mode: str,
    common: dict,
    progress: Progress,
) -> Any:
    from flywheel.active import prioritize
    from flywheel.teacher import label_examples

    ordered = prioritize(examples, priorities) if mode == "relabel" else examples
    return label_examples(ordered, workload, mode, snapshot_id=snapshot_id, progress=progress, **common)


def _synthesize(
    workload: Any,
    examples: list,
    snapshot_id: str,
    priorities: list,
    request: LabelRequest,
    common: dict,
    progress: Progress,
) -> Any:
    from flywheel.active import prioritize, rare_slices, synthesis_slices
    from flywheel.teacher import synthesize_for_slices
    from flywheel.teacher.synthesize import seed_text

    warehouse = common["warehouse"]
    wanted = synthesis_slices(rare_slices(warehouse, workload.id, snapshot_id), priorities)
    ordered = prioritize(examples, priorities)  # the hardest served examples are shown as seeds
    seeds = {name: [e for e in ordered if e.slice == name and e.split == "train"] for name in wanted}
    return synthesize_for_slices(
        {name: found for name, found in seeds.items() if found},
        request.per_slice,
        workload,
        existing_texts=[seed_text(e) for e in examples],
        snapshot_id=snapshot_id,
        progress=progress,
        **common,
    )
