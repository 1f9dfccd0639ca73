"""Serving settings: the resolved bundle the app runs on.

`ServeConfig` (flywheel.config.serve) is what a person writes. `ServeSettings` is what `make_app`
receives: the config plus the workloads, the teacher model per workload, the price catalog and the API
keys read from the environment at build time (never at import time, never from the YAML file).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from flywheel.config.serve import ServeConfig, UnsurePolicy
from flywheel.hardware_profiles import DEFAULT_PROFILE, usd_per_hour
from flywheel.layout import SPOOL_DIR
from flywheel.pricing import PriceCatalog

if TYPE_CHECKING:
    from flywheel.config import FlywheelConfig, WorkloadConfig

@dataclass(frozen=True)
class ServeSettings:
    """Everything `make_app` needs besides its clients."""

    serve: ServeConfig
    workloads: Mapping[str, WorkloadConfig]
    teacher_models: Mapping[str, str]
    prices: PriceCatalog
    student_usd_per_hour: float = field(default_factory=lambda: usd_per_hour(DEFAULT_PROFILE))
    api_keys: frozenset[str] = frozenset()

    def threshold(self, workload_id: str, calibrated: float | None = None) -> float:
        """The confidence under which a student answer goes to the teacher. Precedence: the
        workload's `serve.thresholds` entry, else the champion's calibrated threshold (a partial
        promotion's, from the champions manifest), else `serve.confidence_threshold`."""
        return self.serve.threshold(workload_id, calibrated)

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
    """The configured $/hour, else the hardware profile's."""
    if serve.student_usd_per_hour is not None:
        return serve.student_usd_per_hour
    return usd_per_hour(serve.student_hardware)


def spool_dir(serve: ServeConfig | None, home: Path) -> Path:
    """Where `flywheel serve` captures calls (serve: the config's `serve:` section, None = defaults)."""
    if serve is None or serve.spool_dir is None:
        return home / SPOOL_DIR
    path = Path(serve.spool_dir).expanduser()
    return path if path.is_absolute() else home / path
