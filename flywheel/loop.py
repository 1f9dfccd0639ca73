"""One turn of the flywheel for one workload, as plain library functions.

Each stage reads what the previous one stored in the warehouse (table names and ids pass between
them, never data frames), is idempotent, and returns a JSON-able summary. Prefect flows wrap each
stage in one task; `flywheel run` and `flywheel demo` call the flows. A stage whose inputs did not
change does no work: curation reuses an identical snapshot, training skips candidates already
trained on it, evaluation skips when there is nothing new to judge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.config import FlywheelConfig, WorkloadConfig, load_config
from flywheel.hardware_profiles import DEFAULT_PROFILE
from flywheel.hardware_profiles import usd_per_hour as profile_usd_per_hour
from flywheel.pricing import PriceCatalog
from flywheel.runs import INTERRUPTED, WorkloadBusy, finish_run, start_run, workload_lock  # noqa: F401
from flywheel.store.db import Warehouse
from flywheel.store.factory import open_warehouse

Progress = Callable[[int], None] | None


@dataclass
class Loop:
    """Everything a stage needs: config, home, a warehouse handle and prices. Built once per run."""

    config: FlywheelConfig
    home: Path
    warehouse: Warehouse
    prices: PriceCatalog

    @classmethod
    def open(cls, config_path: str | Path, home: str | Path | None = None) -> Loop:
        config = load_config(config_path)
        home_dir = config.home_dir(home)
        warehouse = open_warehouse(config.warehouse, home_dir)
        return cls(config, home_dir, warehouse, PriceCatalog.load(config.prices))

    def workload(self, workload_id: str) -> WorkloadConfig:
        return self.config.workload(workload_id)


def source_jobs(
    config: FlywheelConfig, workload_id: str | None = None
) -> list[tuple[list[str], str, str, Any]]:
    """(patterns, workload_id, format, mapping) for every configured source; paths relative to the config."""
    base = Path(config.source_file).parent if config.source_file else Path.cwd()
    jobs = []
    for workload in config.workloads:
        if workload_id and workload.id != workload_id:
            continue
        for source in workload.sources:
            path = Path(source.path).expanduser()
            mapping = source.mapping.model_dump() if source.mapping else None
            jobs.append(
                ([str(path if path.is_absolute() else base / path)], workload.id, source.format, mapping)
            )
    return jobs


class SourceMissing(RuntimeError):
    """A configured source named no readable file; the other sources were ingested all the same."""


def ingest_stage(loop: Loop, workload_id: str, progress: Progress = None) -> dict[str, Any]:
    """Every configured source of the workload, plus what `flywheel serve` captured for it.

    A source that matches no file (a typo, logs not delivered yet) fails the stage with its path,
    after everything else is in: a scheduled run must not pass on no data.
    """
    loop.workload(workload_id)
    report = ingest_sources(loop, workload_id, progress)
    if report.errors:
        raise SourceMissing("; ".join(report.errors))
    return report.as_dict() | {"workload_id": workload_id} | served_stage(loop, workload_id)


def ingest_sources(loop: Loop, workload_id: str | None, progress: Progress = None) -> Any:
    """The IngestReport of the configured sources (of one workload, or all) and the serve spool."""
    from flywheel.ingest import IngestReport

    report = IngestReport()
    for patterns, workload, fmt, mapping in source_jobs(loop.config, workload_id):
        part = ingest_files(loop.warehouse, loop.prices, patterns, workload, fmt, mapping, progress)
        report.files.extend(part.files)
    spool = _spool_files(loop)
    if spool:
        report.files.extend(ingest_files(loop.warehouse, loop.prices, spool, None, "spool").files)
    return report


def ingest_files(
    warehouse: Warehouse,
    prices: PriceCatalog,
    patterns: list[Any],
    workload_id: str | None,
    fmt: str,
    mapping: Any = None,
    progress: Progress = None,
) -> Any:
    """One source's files into the warehouse (every line ends ingested, duplicate or quarantined)."""
    from flywheel.ingest import ingest_paths

    return ingest_paths(
        warehouse,
        patterns,
        workload_id=workload_id,
        fmt=fmt,
        mapping=mapping,
        price_fn=prices.cost,
        progress=progress,
    )


def served_stage(loop: Loop, workload_id: str) -> dict[str, Any]:
    """After the spool is in: join `POST /v1/feedback` lines to their calls, score shadow pairs."""
    from flywheel.evaluate.served import shadow_stage
    from flywheel.feedback import ingest_feedback
    from flywheel.serve.feedback import feedback_dir

    if not loop.warehouse.exists():
        return {"feedback": None, "shadow": None}
    workloads = {w.id: w for w in loop.config.workloads}
    feedback = ingest_feedback(loop.warehouse, feedback_dir(_spool_dir(loop)), workloads)
    shadow = shadow_stage(loop.warehouse, loop.workload(workload_id))
    return {"feedback": feedback.as_dict(), "shadow": shadow}


def _spool_dir(loop: Loop) -> Path:
    from flywheel.serve.settings import spool_dir

    return spool_dir(loop.config.serve, loop.home)


def sync_served(loop: Loop) -> dict[str, int]:
    """Every call `flywheel serve` answered, into the money views (served_calls), without an ingest."""
    from flywheel.costs.served import sync_served_calls

    return sync_served_calls(loop.warehouse, _spool_dir(loop)).as_dict()


def _spool_files(loop: Loop) -> list[Path]:
    """What `flywheel serve` captured (hidden files, like its write-ahead log, are not traffic)."""
    from flywheel.costs.served import spool_files

    return spool_files(_spool_dir(loop))


def curate_stage(loop: Loop, workload_id: str, refresh_eval: bool = False) -> dict[str, Any]:
    from flywheel.curate import curate_workload

    report = curate_workload(
        loop.warehouse, loop.workload(workload_id), home=loop.home, refresh_eval=refresh_eval
    )
    return report.as_dict()


def label_stage(
    loop: Loop,
    workload_id: str,
    mode: str = "replay",
    max_usd: float | None = None,
    progress: Progress = None,
    *,
    snapshot_id: str | None = None,
    splits: tuple[str, ...] = ("train", "val"),
    per_slice: int = 20,
) -> dict[str, Any]:
    """Label a snapshot (flywheel/teacher/stage.py); replay costs nothing, relabel/synthesize need a
    live teacher and spend where serving showed the student wrong first."""
    from flywheel.teacher.stage import LabelRequest, label_snapshot

    request = LabelRequest(mode, snapshot_id, splits, max_usd, per_slice)
    return label_snapshot(loop.config, loop.warehouse, loop.prices, workload_id, request, progress)


def train_stage(
    loop: Loop,
    workload_id: str,
    candidates: list[str] | None = None,
    force: bool = False,
    *,
    snapshot_id: str | None = None,
    seed: int = 0,
    resume: bool = True,
    progress: Any = None,
) -> dict[str, Any]:
    """Train the candidates not yet trained on the snapshot (latest by default; all with `force`)."""
    from flywheel.train import train_workload
    from flywheel.train.data import load_training_data

    workload = loop.workload(workload_id)
    data = load_training_data(loop.warehouse, workload_id, snapshot_id)
    wanted = candidates or [s.name for s in workload.students_or_default()]
    done = set() if force else _trained_on(loop.warehouse, workload_id, data.snapshot_id)
    todo = [name for name in wanted if name not in done]
    started = time.monotonic()
    trained = []
    if todo and data.train:
        trained = train_workload(
            workload,
            data.train,
            data.val,
            out_dir=loop.home / "models",
            snapshot_id=data.snapshot_id,
            warehouse=loop.warehouse,
            candidates=todo if workload.students else None,
            seed=seed,
            progress=progress,
            resume=resume,
            teacher_logprobs=data.teacher_logprobs,
            teacher=data.teacher,
        )
    models = [model.as_dict() for item in trained for model in item.flatten()]
    return {
        "snapshot_id": data.snapshot_id,
        "train_examples": len(data.train),
        "val_examples": len(data.val),
        "trained": [m["model_id"] for m in models],
        "skipped": sorted(set(wanted) - set(todo)),
        "candidates": models,
        "seconds": round(time.monotonic() - started, 2),
    }


def _trained_on(warehouse: Warehouse, workload_id: str, snapshot_id: str | None) -> set[str]:
    if snapshot_id is None:
        return set()
    rows = warehouse.read(
        lambda con: con.execute(
            "SELECT DISTINCT name FROM models WHERE workload_id = ? AND snapshot_id = ?",
            [workload_id, snapshot_id],
        ).fetchall()
    )
    return {name for (name,) in rows}


def evaluate_stage(
    loop: Loop,
    workload_id: str,
    model_ids: list[str] | None = None,
    *,
    hardware: str = DEFAULT_PROFILE,
    usd_per_hour: float | None = None,
    reference: str = "auto",
    resamples: int = 1000,
    seed: int = 0,
    dry_run: bool = False,
    progress: Progress = None,
    skip_when_empty: bool = True,
    rejudge_last: bool = False,
    remote: Any = None,
) -> Any:
    """Score candidates, the champion and the teacher on the latest snapshot's eval split, then gate.

    Returns the EvaluationReport, or None when there is no candidate to judge and `skip_when_empty`
    (nothing new was trained since the last decision), which keeps a re-run with no new data cheap;
    without it the gate itself records the "no_candidates" decision. With `rejudge_last` and no
    candidate, the models the last evaluation judged are scored again as a dry run (nothing changes),
    so a person asking after a turn sees that turn's decision and reasons, not "no_candidates".
    `remote` (flywheel.evaluate.remote.RemotePredict) answers the eval split in worker processes.
    """
    from flywheel.bundle import default_bundle, load_predictor
    from flywheel.datasets import load_examples
    from flywheel.evaluate.remote import Precomputed
    from flywheel.evaluate.runner import ReplayPredictor
    from flywheel.evaluate.store import last_judged, raw_examples, teacher_usage
    from flywheel.evaluate.workflow import evaluate_workload
    from flywheel.registry import Registry, RegistryError

    workload = loop.workload(workload_id)
    registry = Registry(loop.warehouse, loop.home)
    records = (
        [registry.get(m) for m in model_ids] if model_ids else registry.list_models(workload_id, "candidate")
    )
    rejudged = None
    if not records and not model_ids and rejudge_last:
        rejudged = last_judged(loop.warehouse, workload_id)
        if rejudged and rejudged[1]:
            records, dry_run = [registry.get(m) for m in rejudged[1]], True
    foreign = [r.model_id for r in records if r.workload_id != workload_id]
    if foreign:
        raise RegistryError(f"not models of workload {workload_id!r}: {', '.join(foreign)}")
    if not records and skip_when_empty:
        return None
    # Every predictor answers the logged requests as the application sent them, through its bundle:
    # the same path `flywheel serve` takes, so the scores are the served student's.
    examples = raw_examples(loop.warehouse, load_examples(loop.warehouse, workload_id, splits=("eval",)))
    current = registry.champion(workload_id)
    dirs = {r.model_id: registry.artifact_dir(r) for r in [*records, *([current] if current else [])]}
    answered = remote(dirs, examples, workload_id) if remote is not None else {}

    def predictor(model_id: str) -> Any:
        loaded = load_predictor(dirs[model_id], default=default_bundle(workload))
        return Precomputed(loaded, examples, answered[model_id]) if model_id in answered else loaded

    candidates = {r.model_id: predictor(r.model_id) for r in records}
    champion = (current.model_id, predictor(current.model_id)) if current else None
    teacher_model = loop.config.teacher_for(workload_id).model
    logged = [e.interaction_id for e in examples if e.interaction_id]
    teacher = ReplayPredictor(
        model=teacher_model,
        usage=teacher_usage(loop.warehouse, logged, loop.prices, {workload_id: teacher_model}),
    )
    snapshots = {r.snapshot_id for r in records if r.snapshot_id}
    judge, workload, client = chat_judge(loop, workload, dry_run=dry_run)
    try:
        report = evaluate_workload(
            registry,
            workload,
            examples,
            candidates=candidates,
            teacher=teacher,
            champion=champion,
            prices=loop.prices,
            hardware_usd_per_hour=profile_usd_per_hour(hardware) if usd_per_hour is None else usd_per_hour,
            snapshot_id=snapshots.pop() if len(snapshots) == 1 else None,
            reference=reference,
            apply=not dry_run,
            n_resamples=resamples,
            seed=seed,
            judge=judge,
            progress=progress,
        )
    finally:
        if client is not None:
            client.close()
    report.data_need = data_need(loop, report, {r.model_id: registry.artifact_dir(r) for r in records})
    report.rejudged_run = rejudged[0] if rejudged and rejudged[1] else None
    return report


def chat_judge(loop: Loop, workload: Any, *, dry_run: bool = False) -> tuple[Any, Any, Any]:
    """(judge, workload, client) for the evaluation (flywheel.evaluate.judge.chat_judge); a dry run
    writes nothing, so its judge neither reads nor fills the warehouse's teacher cache."""
    from flywheel.evaluate.judge import chat_judge as judge_for

    teacher = loop.config.teacher_for(workload.id)
    return judge_for(workload, teacher, None if dry_run else loop.warehouse, loop.prices)


def data_need(loop: Loop, report: Any, artifacts: dict[str, Path]) -> dict[str, Any] | None:
    """How many training records would reach the gate's target (flywheel.evaluate.data_need)."""
    from flywheel.evaluate.data_need import data_need_for, rare_slices
    from flywheel.train.student import read_manifest

    curves = {}
    for model_id, directory in artifacts.items():
        try:
            curves[model_id] = read_manifest(directory).get("learning_curve")
        except FileNotFoundError:
            curves[model_id] = None
    contenders = {m: r for m, r in report.result.models.items() if m in artifacts}
    scored = {m: r.get(report.decision.primary_metric).value for m, r in contenders.items()
              if r.get(report.decision.primary_metric) is not None}  # fmt: skip
    target = report.decision.target.floor if report.decision.target else None
    rare = rare_slices(loop.warehouse, report.workload_id, report.snapshot_id)
    need = data_need_for(target, scored, curves, winner=report.decision.winner, rare_slices=rare)
    if need is not None and report.result.reference == "gold":
        need["caveat"] = "the curve is agreement with the training labels; the target is on gold"
    return need


def standing(loop: Loop, workload_id: str) -> dict[str, Any]:
    """Who serves the workload now and the scores that promoted it (for a turn that judged nothing)."""
    from flywheel.evaluate.store import standing_scores
    from flywheel.registry import Registry

    current = Registry(loop.warehouse, loop.home).champion(workload_id)
    return standing_scores(loop.warehouse, workload_id, current.model_id if current else None)


def costs_stage(loop: Loop, workload_id: str, hardware: str = DEFAULT_PROFILE) -> dict[str, Any]:
    """Refresh the pricing assumptions and return the savings ledger for the workload."""
    from flywheel.costs import hardware_profile, record_assumptions, savings_report

    teachers = {w.id: loop.config.teacher_for(w.id).model for w in loop.config.workloads}
    profile = hardware_profile(hardware)
    sync_served(loop)
    record_assumptions(loop.warehouse, loop.prices, serving=profile, teacher_models=teachers)
    return savings_report(loop.warehouse, workload_id)
