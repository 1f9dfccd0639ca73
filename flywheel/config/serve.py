"""The `serve:` section of flywheel.yaml: how `flywheel serve` routes, limits, batches and captures.

What a person writes; flywheel.serve.settings resolves it (with the workloads, prices and keys) into
what the app runs on.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flywheel.hardware_profiles import DEFAULT_PROFILE

UnsurePolicy = Literal["teacher", "student", "error"]


class ServeConfig(BaseModel):
    """How `flywheel serve` routes, limits, batches and captures."""

    model_config = ConfigDict(extra="forbid")

    api_keys_env: str | None = Field(
        "FLYWHEEL_API_KEYS",
        description="Name of the env var holding comma-separated bearer keys; unset/empty = no auth",
    )
    max_request_bytes: int = Field(1_000_000, ge=1024, description="Larger bodies get 413")
    max_tokens_limit: int = Field(4096, ge=1, description="max_tokens above this gets 400")
    confidence_threshold: float = Field(
        0.5, ge=0, le=1, description="Default: student answers below this go to the teacher"
    )
    thresholds: dict[str, float] = Field(
        default_factory=dict,
        description="Per-workload thresholds; override a partially promoted champion's calibrated one",
    )
    on_unsure: UnsurePolicy | None = Field(
        None,
        description="A student answer that is invalid or under the threshold: teacher (fall back), "
        "student (serve it, marked x-flywheel-fallback-wanted) or error (503). Default: teacher when "
        "the workload has one, else error",
    )
    on_unsure_by_workload: dict[str, UnsurePolicy] = Field(
        default_factory=dict, description="Per-workload on_unsure"
    )
    load_wait_s: float = Field(
        30.0, ge=0, le=600, description="How long a call waits for its workload's champion to load"
    )
    shadow_rate: float = Field(0.0, ge=0, le=1, description="Share of student answers also sent to teacher")
    shadow_unsure_margin: float = Field(
        0.1, ge=0, le=1, description="A student answer within this of its threshold counts as unsure"
    )
    shadow_unsure_boost: float = Field(
        4.0,
        ge=1,
        description="Unsure student answers are shadowed at min(1, shadow_rate x this): the "
        "teacher's shadow budget goes where the student is most likely wrong (flywheel/active.py)",
    )
    shadow_concurrency: int = Field(4, ge=1, le=256, description="Background shadow calls at once")
    max_batch: int = Field(16, ge=1, le=1024, description="Student requests per batch")
    max_wait_ms: float = Field(5.0, ge=0, le=1000, description="How long a batch waits to fill")
    spool_dir: str | None = Field(None, description="Capture spool directory; default HOME/spool")
    spool_rotate_mb: float = Field(64.0, gt=0, description="Rotate the spool file past this size")
    spool_rotate_s: float = Field(3600.0, gt=0, description="Rotate the spool file past this age")
    spool_gzip: bool = Field(False, description="Compress rotated spool files to .jsonl.gz")
    log_prompts: bool = Field(False, description="Put prompt and answer text in the server log")
    aliases: dict[str, str] = Field(
        default_factory=dict,
        description="Model name -> workload id (besides workload ids, the model names the workload's "
        "logs used and its prompt template, learned from the champion's bundle)",
    )
    champions_poll_s: float = Field(1.0, gt=0, le=60, description="How often champions.json is checked")
    student_loader: str | None = Field(
        None, description="module:function loading a Predictor from a model dir (default load_student)"
    )
    student_hardware: str = Field(DEFAULT_PROFILE, description="hardware.yaml profile for cost")
    student_usd_per_hour: float | None = Field(None, ge=0, description="Overrides the hardware profile")

    def threshold(self, workload_id: str, calibrated: float | None = None) -> float:
        """The workload's `thresholds` entry, else the champion's calibrated one, else the default."""
        if workload_id in self.thresholds:
            return self.thresholds[workload_id]
        return calibrated if calibrated is not None else self.confidence_threshold

    @field_validator("thresholds")
    @classmethod
    def _thresholds_are_probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for workload_id, threshold in value.items():
            if not 0 <= threshold <= 1:
                raise ValueError(f"threshold for {workload_id!r} must be within [0, 1], got {threshold}")
        return value
