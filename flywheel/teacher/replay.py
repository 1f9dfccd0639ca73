"""Replay: the logged production answer is the label. No calls, no cost."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flywheel.config import WorkloadConfig
from flywheel.records import Example, utcnow
from flywheel.store.db import Warehouse
from flywheel.teacher.cache import write_batches
from flywheel.teacher.labels import Label
from flywheel.teacher.runs import LabelReport, quarantine_row, upsert_run
from flywheel.teacher.structured import InvalidAnswer, parse_answer

BATCH = 5000


def replay_labels(
    examples: Sequence[Example],
    workload: WorkloadConfig,
    *,
    warehouse: Warehouse,
    run_id: str,
    snapshot_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> LabelReport:
    """Label each example with its own target; Example.label when set, else parsed from the target."""
    report = LabelReport(run_id, workload.id, "replay")
    warehouse.write(lambda con: upsert_run(con, report))
    try:
        for start in range(0, len(examples), BATCH):
            chunk = examples[start : start + BATCH]
            labels, rejected = [], []
            for example in chunk:
                try:
                    labels.append(replay_label(example, workload, snapshot_id))
                except InvalidAnswer as exc:
                    report.failed += 1
                    report.failures[exc.reason] += 1
                    rejected.append(quarantine_row(example, exc.reason, exc.detail, run_id))
            batch = {"labels": [label.row() for label in labels], "quarantine": rejected}
            warehouse.write(lambda con, b=batch: write_batches(con, {t: r for t, r in b.items() if r}))
            report.labeled += len(labels)
            report.cached += len(labels)
            report.labels.extend(labels)
            if progress is not None:
                progress(len(chunk))
    except BaseException:
        report.stopped_reason = "interrupted"
        raise
    finally:
        report.finished_at = utcnow()
        warehouse.write(lambda con: upsert_run(con, report))
    return report


def replay_label(example: Example, workload: WorkloadConfig, snapshot_id: str | None) -> Label:
    if not example.target:
        raise InvalidAnswer("no_target", "the example has no logged answer to replay")
    label = example.label
    if label is None:
        label = parse_answer(example.target, workload, example).label
    return Label(
        example_id=example.example_id,
        workload_id=example.workload_id,
        mode="replay",
        target=example.target,
        label=label,
        snapshot_id=snapshot_id,
        messages=example.messages if example.synthetic else None,
        confidence=1.0,
        synthetic=example.synthetic,
        slice=example.slice,
    )
