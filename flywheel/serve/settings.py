"""Serving settings: the `serve:` section of flywheel.yaml and the resolved bundle the app runs on.

`ServeConfig` is what a person writes. `ServeSettings` is what `make_app` receives: the config plus
the workloads, the teacher model per workload, the price catalog and the API keys read from the
environment at build time (never at import time, never from the YAML file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from flywheel.pricing import PriceCatalog

if TYPE_CHECKING:
    from flywheel.config import FlywheelConfig, WorkloadConfig

DEFAULT_STUDENT_HARDWARE = "cpu-2core"
FALLBACK_USD_PER_HOUR = 0.10
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
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per-workload thresholds")
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
    student_hardware: str = Field(DEFAULT_STUDENT_HARDWARE, description="hardware.yaml profile for cost")
    student_usd_per_hour: float | None = Field(None, ge=0, description="Overrides the hardware profile")

    @field_validator("thresholds")
    @classmethod
    def _thresholds_are_probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for workload_id, threshold in value.items():
            if not 0 <= threshold <= 1:
                raise ValueError(f"threshold for {workload_id!r} must be within [0, 1], got {threshold}")
        return value


@dataclass(frozen=True)
class ServeSettings:
    """Everything `make_app` needs besides its clients."""

    serve: ServeConfig
    workloads: Mapping[str, WorkloadConfig]
    teacher_models: Mapping[str, str]
    prices: PriceCatalog
    student_usd_per_hour: float = FALLBACK_USD_PER_HOUR
    api_keys: frozenset[str] = frozenset()

    def threshold(self, workload_id: str) -> float:
        return self.serve.thresholds.get(workload_id, self.serve.confidence_threshold)

    def on_unsure(self, workload_id: str, teacher_available: bool) -> UnsurePolicy:
        """What happens to an invalid or unsure student answer; "teacher" needs a teacher."""
        policy = self.serve.on_unsure_by_workload.get(workload_id, self.serve.on_unsure)
        if policy is None or (policy == "teacher" and not teacher_available):
            return "teacher" if teacher_available else "error"
        return policy

    @property
    def model_names(self) -> list[str]:
        return sorted({*self.workloads, *self.serve.aliases})


def build_settings(
    config: FlywheelConfig,
    serve: ServeConfig | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServeSettings:
    """Resolve a FlywheelConfig (and its `serve:` section, or `serve`) into ServeSettings."""
    from flywheel.config import ConfigError

    serve = serve or config.serve or ServeConfig()
    environ = os.environ if environ is None else environ
    workloads = {w.id: w for w in config.workloads}
    for alias, target in serve.aliases.items():
        if target not in workloads:
            raise ConfigError(
                f"serve.aliases.{alias}: unknown workload {target!r} (known: {sorted(workloads)})"
            )
    for section in ("thresholds", "on_unsure_by_workload"):
        for workload_id in getattr(serve, section):
            if workload_id not in workloads:
                raise ConfigError(f"serve.{section}.{workload_id}: unknown workload")
    return ServeSettings(
        serve=serve,
        workloads=workloads,
        teacher_models={w: config.teacher_for(w).model for w in workloads},
        prices=PriceCatalog.load(config.prices),
        student_usd_per_hour=_usd_per_hour_or_config_error(serve),
        api_keys=read_api_keys(serve.api_keys_env, environ),
    )


def _usd_per_hour_or_config_error(serve: ServeConfig) -> float:
    from flywheel.config import ConfigError

    try:
        return student_usd_per_hour(serve)
    except ValueError as exc:
        raise ConfigError(f"serve.student_hardware: {exc}") from exc


def read_api_keys(env_name: str | None, environ: Mapping[str, str]) -> frozenset[str]:
    if not env_name:
        return frozenset()
    return frozenset(key.strip() for key in environ.get(env_name, "").split(",") if key.strip())


def student_usd_per_hour(serve: ServeConfig) -> float:
    """The configured $/hour, else the hardware profile's, else the documented default."""
    if serve.student_usd_per_hour is not None:
        return serve.student_usd_per_hour
    try:
        from flywheel.evaluate.hardware import hardware_usd_per_hour
    except ImportError:  # the evaluate stage is optional at serve time
        return FALLBACK_USD_PER_HOUR
    return hardware_usd_per_hour(serve.student_hardware)


def spool_dir(serve: ServeConfig | None, home: Path) -> Path:
    """Where `flywheel serve` captures calls (serve: the config's `serve:` section, None = defaults)."""
    if serve is None or serve.spool_dir is None:
        return home / "spool"
    path = Path(serve.spool_dir).expanduser()
    return path if path.is_absolute() else home / path
