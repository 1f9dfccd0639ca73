"""Train one student candidate end to end: data -> model -> fit -> post-process -> artifacts -> registry.

`train_candidate` is the library entry point; `train_workload` loops over a workload's candidates.
A run is keyed by a fingerprint of (snapshot, settings, seed, data): checkpoints live under
`<models>/<workload>/.runs/<candidate>-<fingerprint>/`, so re-running after an interruption resumes
from the last checkpoint, and they are removed once the artifacts are saved.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.bundle import Bundle, build_bundle
from flywheel.config import StudentConfig, WorkloadConfig
from flywheel.records import Example, utcnow
from flywheel.registry import register_candidates
from flywheel.store.db import Warehouse
from flywheel.train.artifacts import fingerprint, model_version
from flywheel.train.config import TrainSettings, resolve_settings, settings_fingerprint
from flywheel.train.formatting import target_text
from flywheel.train.hardware import Hardware, detect_hardware

# progress(candidate_name, done_steps, total_steps)
TrainProgress = Callable[[str, int, int], None]


@dataclass
class TrainedCandidate:
    """One registered model: the trained candidate or one of its post-training variants."""

    name: str
    model_id: str
    path: Path
    kind: str
    method: str
    base: str | None
    variant: str
    params: int
    size_bytes: int
    train_seconds: float
    tokens_per_second: float
    metrics: dict[str, Any] = field(default_factory=dict)
    resumed_from_step: int | None = None
    kept: bool = True
    code_version: str | None = None
    loss_curve: list[dict[str, Any]] = field(default_factory=list, repr=False)
    fit: dict[str, Any] | None = None  # what flywheel.train.search chose, and why
    variants: list[TrainedCandidate] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_id": self.model_id,
            "path": str(self.path),
            "kind": self.kind,
            "method": self.method,
            "base": self.base,
            "variant": self.variant,
            "params": self.params,
            "size_bytes": self.size_bytes,
            "train_seconds": round(self.train_seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
            "metrics": self.metrics,
            "resumed_from_step": self.resumed_from_step,
            "fit": self.fit,
        }

    def flatten(self) -> list[TrainedCandidate]:
        """This model and its variants, the ones kept for registration only."""
        return [m for m in (self, *self.variants) if m.kept]


@dataclass
class RunContext:
    """What every stage of one candidate's training shares."""

    settings: TrainSettings
    workload: WorkloadConfig
    hardware: Hardware
    run_dir: Path
    artifact_dir: Path
    model_id: str
    version: str
    snapshot_id: str | None
    seed: int
    teacher_logprobs: dict[str, Any] | None = None
    teacher: str | None = None
    progress: Callable[[int, int], None] | None = None
    bundle: Bundle | None = None


def data_digest(examples: list[Example], task: str) -> str:
    return fingerprint([(e.example_id, target_text(e, task), e.weight) for e in examples])


def train_candidate(
    candidate: StudentConfig,
    workload: WorkloadConfig,
    train: list[Example],
    val: list[Example],
    *,
    out_dir: Path,
    snapshot_id: str | None,
    warehouse: Warehouse | None,
    seed: int = 0,
    progress: TrainProgress | None = None,
    resume: bool = True,
    teacher_logprobs: dict[str, Any] | None = None,
    teacher: str | None = None,
    bundle: Bundle | None = None,
) -> TrainedCandidate:
    """Train `candidate` on `train`, score it on `val`, save under `out_dir/<workload>/<version>/`.

    out_dir: the models root (FLYWHEEL_HOME/models). teacher_logprobs: captured API logprobs by
    example or interaction id (distill mode sparse). teacher: recorded as provenance in the registry.
    bundle: what goes from raw request to served answer (default: learned from `train` and, with a
    warehouse, the snapshot's prompt template). Registers the candidate (and kept variants) in
    `warehouse` when one is given.
    """
    if not train:
        raise ValueError(f"workload {workload.id!r} student {candidate.name!r}: no training examples")
    settings = resolve_settings(candidate, workload)
    hardware = detect_hardware()
    run_key = fingerprint(
        snapshot_id, settings_fingerprint(settings), seed, data_digest(train, workload.task)
    )
    version = model_version(run_key)
    context = RunContext(
        settings=settings,
        workload=workload,
        hardware=hardware,
        run_dir=Path(out_dir) / workload.id / ".runs" / f"{candidate.name}-{run_key[:12]}",
        artifact_dir=Path(out_dir) / workload.id / version,
        model_id=f"{workload.id}/{candidate.name}/{version}",
        version=version,
        snapshot_id=snapshot_id,
        seed=seed,
        teacher_logprobs=teacher_logprobs,
        teacher=teacher or settings.options.distill.teacher,
        progress=(lambda done, total: progress(candidate.name, done, total)) if progress else None,
        bundle=bundle or workload_bundle(workload, train, warehouse, snapshot_id),
    )
    if not resume and context.run_dir.exists():
        shutil.rmtree(context.run_dir)
    from flywheel.train.pipeline import run_candidate

    started = time.monotonic()
    trained = run_candidate(context, train, val, started)
    if warehouse is not None:
        register(warehouse, context, trained)
    shutil.rmtree(context.run_dir, ignore_errors=True)
    return trained


def workload_bundle(
    workload: WorkloadConfig, train: list[Example], warehouse: Warehouse | None, snapshot_id: str | None
) -> Bundle:
    """The bundle every candidate of this training run shares (see flywheel.bundle)."""
    template, request_models = None, ()
    if warehouse is not None:
        from flywheel.bundle.sources import bundle_sources

        template, request_models = bundle_sources(warehouse, workload.id, snapshot_id)
    return build_bundle(workload, train, template=template, request_models=request_models)


def register(warehouse: Warehouse, context: RunContext, trained: TrainedCandidate) -> None:
    rows, steps = [], {}
    manifest_config = settings_fingerprint(context.settings)
    for model in trained.flatten():
        rows.append(
            {
                "model_id": model.model_id,
                "workload_id": context.workload.id,
                "name": model.name,
                "kind": model.kind,
                "base": model.base or "scratch",
                "method": model.method,
                "path": str(model.path),
                "snapshot_id": context.snapshot_id,
                "params": model.params,
                "size_bytes": model.size_bytes,
                "config": {**manifest_config, "variant": model.variant, "seed": context.seed},
                "code_version": model.code_version,
                "teacher": context.teacher,
                "train_seconds": model.train_seconds,
                "tokens_per_second": model.tokens_per_second,
                "metrics": model.metrics,
                "created_at": utcnow(),
            }
        )
        steps[model.model_id] = model.loss_curve
    register_candidates(warehouse, rows, steps)


def train_workload(
    workload: WorkloadConfig,
    train: list[Example],
    val: list[Example],
    *,
    out_dir: Path,
    snapshot_id: str | None,
    warehouse: Warehouse | None,
    candidates: list[str] | None = None,
    seed: int = 0,
    progress: TrainProgress | None = None,
    resume: bool = True,
    teacher_logprobs: dict[str, Any] | None = None,
    teacher: str | None = None,
) -> list[TrainedCandidate]:
    """Train the workload's declared candidates (or the named ones); the offline default when none."""
    students = workload.students_or_default()
    if candidates:
        known = {s.name for s in students}
        unknown = [name for name in candidates if name not in known]
        if unknown:
            from flywheel.config import ConfigError

            raise ConfigError(
                f"workload {workload.id!r} has no student {', '.join(map(repr, unknown))} "
                f"(declared: {', '.join(sorted(known))})"
            )
        students = [s for s in students if s.name in candidates]
    bundle = workload_bundle(workload, train, warehouse, snapshot_id)
    return [
        train_candidate(
            student,
            workload,
            train,
            val,
            out_dir=out_dir,
            snapshot_id=snapshot_id,
            warehouse=warehouse,
            seed=seed,
            progress=progress,
            resume=resume,
            teacher_logprobs=teacher_logprobs,
            teacher=teacher,
            bundle=bundle,
        )
        for student in students
    ]
