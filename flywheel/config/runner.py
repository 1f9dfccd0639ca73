"""The `runner:` section of flywheel.yaml: where the fan-out stages' tasks run.

`local` (the default) runs every stage in the flow's own process. `dask` and `ray` submit the label
stage's teacher batches and each model's eval-split predictions (nothing that writes the warehouse) as
Prefect tasks to a cluster: one started for the stage with `workers` processes (Dask LocalCluster) or
CPUs (a local Ray), or the existing one at `address`.
flows/runners.py turns this section into the Prefect task runner; the library never imports Prefect.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RunnerKind = Literal["local", "dask", "ray"]


class RunnerConfig(BaseModel):
    """Which Prefect task runner fans out labeling; the teacher's rate limits and budget stay shared."""

    model_config = ConfigDict(extra="forbid")

    kind: RunnerKind = Field("local", description="local (one process) | dask | ray (a cluster)")
    workers: int = Field(
        2, ge=1, le=1024, description="dask: LocalCluster worker processes; ray: CPUs of the local Ray"
    )
    threads_per_worker: int = Field(1, ge=1, le=64, description="dask: threads in each worker process")
    address: str | None = Field(
        None,
        description="An existing cluster instead of a local one: dask tcp://host:8786, ray ray://host:10001",
    )
    shard_size: int = Field(
        256, ge=1, le=1_000_000, description="Examples per labeling task sent to a worker"
    )

    @model_validator(mode="after")
    def _address_needs_dask(self) -> RunnerConfig:
        if self.address is not None and self.kind == "local":
            raise ValueError("runner.address is only used with kind: dask or ray (kind is 'local')")
        return self

    @property
    def fans_out(self) -> bool:
        return self.kind != "local"

    @property
    def concurrent_tasks(self) -> int:
        """Tasks running at once on a local cluster (what the teacher's concurrency is split by)."""
        return self.workers * (self.threads_per_worker if self.kind == "dask" else 1)
