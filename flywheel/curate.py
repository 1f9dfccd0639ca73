"""The curation stage: a workload's interactions in, a versioned, leakage-free dataset snapshot out.

    rows = every interaction of the workload (oldest batch first)
    -> prompt template found, requests pruned to their variable part, PII scrubbed
    -> row checks (first failing reason), the GE suite on batches not validated before
    -> exact and near-duplicate groups (one representative kept per group and answer)
    -> slices; eval first (the previous eval rows carried over, topped up with the eval share of rows
       never judged before), then caps on the training pool, then train/val
    -> snapshot (reused when identical), exports, and every verdict, result and count stored

Rows are read and prepared chunk by chunk and slimmed to what the later steps need
(`flywheel.quality.stream`), then everything is written in one short transaction, so a crash leaves
nothing half-written and a re-run of the same inputs and config gives the same snapshot.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.datasets.snapshots import SnapshotInfo, SnapshotRow, config_hash, content_hash
from flywheel.datasets.splits import SplitItem, assign_train_val, top_up_pick
from flywheel.quality.debias import UNKNOWN
from flywheel.quality.dedup_index import index_path
from flywheel.quality.pii import build_patterns
from flywheel.quality.pool import (
    SLICE_KIND,
    assign_slices,
    cap_pool,
    distribution_report,
    mark_duplicates,
    production_counts,
    production_report,
    reject_eval_neighbours,
    slice_stat_rows,
)
from flywheel.quality.prepared import PreparedSink, prep_key
from flywheel.quality.pruning import PromptTemplate
from flywheel.quality.rows import CurationRow
from flywheel.quality.store import CurationState, read_state, write_results
from flywheel.quality.stream import PreparedPool, find_pool_template, prepare_pool
from flywheel.quality.summary import summarize, summarize_feedback
from flywheel.records import Example, utcnow
from flywheel.store.db import Warehouse

ProgressFn = Callable[[int], None]


@dataclass
class CurationReport:
    run_id: str
    workload_id: str
    n_in: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    downweighted: dict[str, int] = field(default_factory=dict)  # kept at a weight below 1, by reason
    feedback: dict[str, Any] = field(default_factory=dict)  # what `curation.feedback` found
    splits: dict[str, int] = field(default_factory=dict)
    snapshot_id: str | None = None
    content_hash: str | None = None
    config_hash: str | None = None
    eval_snapshot_id: str | None = None
    reused_snapshot: bool = False
    eval_dropped: int = 0
    eval_carried: int = 0
    eval_added: int = 0
    pii: dict[str, int] = field(default_factory=dict)
    pii_out: dict[str, int] = field(default_factory=dict)
    dedup: dict[str, int] = field(default_factory=dict)
    dedup_calibration: list[dict[str, Any]] = field(default_factory=list)  # pairs nearest the threshold
    slices: dict[str, Any] = field(default_factory=dict)
    clients: dict[str, Any] = field(default_factory=dict)
    tokens_per_example: dict[str, float] = field(default_factory=dict)
    template: dict[str, Any] | None = None
    label_proposal: dict[str, Any] | None = None  # classification without `labels`: the inferred set
    expectations: dict[str, int] = field(default_factory=dict)
    quarantined_at_ingest: int = 0
    export_path: str | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    prepared: dict[str, int] = field(default_factory=dict)  # rows read from the store / prepared now

    @property
    def n_out(self) -> int:
        return sum(self.splits.values())

    def funnel(self) -> dict[str, Any]:
        out = {"in": self.n_in, "rejected": self.rejected, "out": self.n_out, "splits": self.splits}
        return out | {"downweighted": self.downweighted}

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("n_in")
        return {"snapshot_id": self.snapshot_id, **self.funnel(), **body}


class NothingKept(RuntimeError):
    """Curation rejected every row: no snapshot is written (the previous one stays current).

    The run and its verdicts are stored, so `flywheel quality --rejected REASON` lists the rows.
    """

    def __init__(self, report: CurationReport) -> None:
        self.report = report
        reason, count = next(iter(report.rejected.items()), ("none", 0))
        super().__init__(
            f"curation of {report.workload_id!r} kept 0 of {report.n_in} rows; top rejection reason: "
            f"{reason} ({count} rows); see `flywheel quality -w {report.workload_id} --rejected {reason}`"
        )
        self.top_reason = reason


class _Timer:
    """Seconds per stage, for the report (where a slow run spends its time)."""

    def __init__(self) -> None:
        self.start = self.last = time.monotonic()
        self.started = utcnow()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[name] = round(now - self.last, 3)
        self.last = now

    @property
    def total(self) -> float:
        return round(time.monotonic() - self.start, 3)


def curate_workload(
    warehouse: Warehouse,
    workload: WorkloadConfig,
    *,
    home: Path,
    refresh_eval: bool = False,
    progress: ProgressFn | None = None,
) -> CurationReport:
    """Curate every interaction of `workload` into a dataset snapshot; see the module docstring."""
    timer = _Timer()
    started = timer.started
    config = workload.curation
    if not warehouse.exists():
        raise FileNotFoundError(f"{warehouse.location}: no warehouse yet (run `flywheel ingest` first)")
    warehouse.ensure_schema()
    state = warehouse.read(lambda con: read_state(con, workload.id, refresh_eval))
    report = CurationReport(f"cur-{started:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}", workload.id)
    template = warehouse.read(lambda con: find_pool_template(con, workload)) if config.prune_prompts else None
    timer.lap("read")
    patterns = build_patterns(config.pii_types, config.pii_patterns)
    sink = PreparedSink(workload.id, prep_key(workload, template))  # rows no earlier curate prepared
    try:
        return _curate(warehouse, workload, home, state, report, template, patterns, sink, progress, timer)
    finally:
        sink.close()


def _curate(
    warehouse: Warehouse,
    workload: WorkloadConfig,
    home: Path,
    state: CurationState,
    report: CurationReport,
    template: PromptTemplate | None,
    patterns: tuple[Any, ...],
    sink: PreparedSink,
    progress: ProgressFn | None,
    timer: _Timer,
) -> CurationReport:
    """The rest of `curate_workload`, from preparing the rows to writing the results."""
    config, started = workload.curation, timer.started
    prepared = warehouse.read(
        lambda con: prepare_pool(
            con, workload, template, patterns, state.validated_batches, progress, sink=sink
        )
    )
    rows = prepared.rows
    if not rows:
        raise LookupError(
            f"no interactions for workload {workload.id!r}: run `flywheel ingest ... -w {workload.id}`"
        )
    report.label_proposal = propose_labels(prepared.answers, workload)
    report.prepared = {"stored": len(rows) - sink.count, "prepared": sink.count}
    timer.lap("prune_scrub_check")
    quality = _run_expectations(prepared, workload) if config.expectations else []
    timer.lap("expectations")
    index = index_path(home, workload.id)  # near-duplicate index: only new texts are banded
    report.dedup, report.dedup_calibration = mark_duplicates(rows, workload, index)
    timer.lap("dedup")
    candidates = [row for row in rows if row.kept]
    topic_terms = assign_slices(candidates, workload)
    eval_rows = _eval_split(candidates, rows, state, workload, report)
    eval_groups = {row.dup_group for row in candidates if row.split == "eval" and row.dup_group}
    pool = [row for row in candidates if row.split != "eval"]
    report.dedup["near_duplicate_of_eval"] = reject_eval_neighbours(pool, eval_groups)
    production = production_counts(rows, workload)
    slice_stats = _split_pool([row for row in pool if row.kept], workload, report, production)
    snapshot_rows = eval_rows + [_snapshot_row(row, workload.id) for row in pool if row.kept]
    summarize(report, rows, snapshot_rows, template, quality, state.quarantined, topic_terms)
    summarize_feedback(report, rows, config.feedback)
    timer.lap("slices_caps_splits")
    if not snapshot_rows:  # store the run and every verdict (so `flywheel quality` explains it), no snapshot
        report.timings, report.seconds = timer.laps, timer.total
        warehouse.write(
            lambda con: (
                write_results(con, report, None, [], rows, template, quality, slice_stats, started)
                or sink.write(con)
            )
        )
        raise NothingKept(report)
    info = _snapshot_info(report, workload, state, snapshot_rows, home, started)
    timer.lap("snapshot_export")
    report.timings, report.seconds = timer.laps, timer.total
    warehouse.write(
        lambda con: (
            write_results(con, report, info, snapshot_rows, rows, template, quality, slice_stats, started)
            or sink.write(con)
        )
    )
    return report


def propose_labels(answers: list[str], workload: WorkloadConfig) -> dict[str, Any] | None:
    """For a classification workload without `labels`: the label set (with counts) and label parser
    inferred from the logged answers. A proposal only: curation, evaluation and serving all read
    answers under the configured contract until the config says otherwise."""
    if workload.task != "classification" or workload.labels:
        return None
    from flywheel.answers import AnswerSpec
    from flywheel.infer import infer_labels

    return infer_labels(answers, AnswerSpec.of(workload).parser).as_dict()


def _run_expectations(pool: PreparedPool, workload: WorkloadConfig) -> list[Any]:
    from flywheel.quality.expectations import run_suite

    return run_suite(workload, pool.quality_frames(), pool.first_requests())


def _eval_split(
    candidates: list[CurationRow],
    rows: list[CurationRow],
    state: CurationState,
    workload: WorkloadConfig,
    report: CurationReport,
) -> list[SnapshotRow]:
    """The eval split: every carried row still eligible, topped up with its share of new rows.

    Carried rows (the previous eval split) stay as stored, with today's gold label. New rows are the
    ones no earlier snapshot's run judged, in near-duplicate families with no judged member (a model
    trained on an earlier snapshot may have trained on a judged row or its twin). Each slice is topped
    up to `eval_fraction` of its rows (stratified, whole families), and the split is bounded by
    `max_eval_examples` (carried rows are never dropped for it: lowering the bound takes
    --refresh-eval). Without a previous split (first run, --refresh-eval) every row is new, which gives
    the plain stratified carve. Champion and candidates are then scored on this one latest split.
    Downweighted rows (negative feedback) are training data only: never a reference to score on.
    """
    config = workload.curation
    candidates = [row for row in candidates if row.weight == 1.0]
    by_interaction = {row.interaction_id: row for row in candidates}
    carried, regolded = _carried_eval(state, by_interaction)
    report.eval_dropped = len(state.eval_rows or []) - len(carried)
    held = Counter(by_interaction[r.example.interaction_id].slice or UNKNOWN for r in carried)
    sizes = Counter(row.slice or UNKNOWN for row in candidates)
    items = [
        SplitItem(row.interaction_id, row.slice or UNKNOWN, _family(row))
        for row in _fresh_rows(candidates, rows, state.seen_ids)
    ]
    picked = top_up_pick(
        items, sizes, held, config.eval_fraction, seed=config.seed, max_items=config.max_eval_examples
    )
    added = []
    for row in candidates:
        if row.interaction_id in picked:
            row.split = "eval"
            added.append(_snapshot_row(row, workload.id))
    report.eval_carried, report.eval_added = len(carried), len(added)
    if carried and not (added or regolded or report.eval_dropped):
        report.eval_snapshot_id = state.eval_snapshot_id  # the eval split is unchanged
    return carried + added


def _carried_eval(
    state: CurationState, by_interaction: dict[str, CurationRow]
) -> tuple[list[SnapshotRow], int]:
    """The previous eval rows still eligible (marked eval), and how many got a new gold label."""
    carried, regolded = [], 0
    for stored in state.eval_rows or []:
        row = by_interaction.get(stored.example.interaction_id or "")
        if row is None:
            continue
        row.split = "eval"
        if stored.example.gold != row.gold:
            stored = SnapshotRow(replace(stored.example, gold=row.gold), stored.client_id, stored.dup_group)
            regolded += 1
        carried.append(stored)
    return carried, regolded


def _fresh_rows(candidates: list[CurationRow], rows: list[CurationRow], seen: set[str]) -> list[CurationRow]:
    """Candidates no earlier run judged, in families none of whose members it judged."""
    if not seen:
        return list(candidates)
    judged = {_family(row) for row in rows if row.interaction_id in seen}
    return [row for row in candidates if row.interaction_id not in seen and _family(row) not in judged]


def _family(row: CurationRow) -> str:
    return row.dup_group or row.interaction_id


def _split_pool(
    pool: list[CurationRow], workload: WorkloadConfig, report: CurationReport, production: dict[str, int]
) -> list[dict[str, Any]]:
    """Cap the training pool, split what is left into train/val; returns the slice_stats rows."""
    config = workload.curation
    before, after = cap_pool(pool, workload, production)
    kept = [row for row in pool if row.kept]
    items = [
        SplitItem(row.interaction_id, row.slice or UNKNOWN, row.dup_group or row.interaction_id)
        for row in kept
    ]
    splits = assign_train_val(items, config.val_fraction, seed=config.seed)
    for row in kept:
        row.split = splits[row.interaction_id]
    kind = SLICE_KIND[workload.task]
    report.slices = distribution_report(kind, before["slice"], after["slice"], config.min_slice_count)
    report.slices |= production_report(production, after["slice"], config.cap_below_production_share)
    report.clients = distribution_report("client", before["client"], after["client"], None)
    return slice_stat_rows(before, after, workload)


def _snapshot_row(row: CurationRow, workload_id: str) -> SnapshotRow:
    target = {
        key: row.target[key] for key in ("role", "content", "tool_calls") if row.target and key in row.target
    }
    example = Example(
        example_id=row.interaction_id,
        workload_id=workload_id,
        messages=row.messages,
        target=target,
        label=row.label,
        gold=row.gold,
        slice=row.slice,
        split=row.split,
        tools=row.request.get("tools"),
        response_format=row.request.get("response_format"),
        interaction_id=row.interaction_id,
        weight=row.weight,
    )
    return SnapshotRow(example, row.client_id, row.dup_group)


def _snapshot_info(
    report: CurationReport,
    workload: WorkloadConfig,
    state: CurationState,
    snapshot_rows: list[SnapshotRow],
    home: Path,
    started: Any,
) -> SnapshotInfo | None:
    """Reuse an identical snapshot, or export a new one; None when the reused one needs no write."""
    report.content_hash = content_hash(snapshot_rows)
    report.config_hash = config_hash(workload)
    identical = state.find_identical(report.content_hash, report.config_hash)
    if identical is not None:
        report.snapshot_id, report.reused_snapshot = identical.snapshot_id, True
        report.eval_snapshot_id = identical.eval_snapshot_id
        report.export_path = identical.export_path
        return None
    report.snapshot_id = state.next_snapshot_id
    report.eval_snapshot_id = report.eval_snapshot_id or report.snapshot_id
    export_path = None
    if workload.curation.export:
        from flywheel.datasets.export import export_snapshot

        out_dir = home / "datasets" / workload.id / report.snapshot_id
        export_path = str(
            export_snapshot(snapshot_rows, out_dir, workload.curation.export, report.snapshot_id)
        )
    report.export_path = export_path
    return SnapshotInfo(
        snapshot_id=report.snapshot_id,
        workload_id=workload.id,
        content_hash=report.content_hash,
        config_hash=report.config_hash,
        eval_snapshot_id=report.eval_snapshot_id,
        created_at=started,
        n_train=report.splits["train"],
        n_val=report.splits["val"],
        n_eval=report.splits["eval"],
        export_path=export_path,
    )


__all__ = ["CurationReport", "NothingKept", "curate_workload"]
