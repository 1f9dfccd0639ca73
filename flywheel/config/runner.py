"""The `runner:` section of flywheel.yaml: where the fan-out stages' tasks run.

`local` (the default) runs every stage in the flow's own process. `dask` submits the label stage's
teacher batches (and nothing that writes the warehouse) as Prefect tasks to a Dask cluster: a
LocalCluster of `workers` processes started for the stage, or the existing scheduler at `address`.
flows/runners.py turns this section into the Prefect task runner; the library never imports Prefect.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

RunnerKind = Literal["local", "dask"]


class RunnerConfig(BaseModel):
    """Which Prefect task runner fans out labeling; the teacher's rate limits and budget stay shared."""

    model_config = ConfigDict(extra="forbid")

    kind: RunnerKind = Field("local", description="local (one process) | dask (a Dask cluster)")
    workers: int = Field(2, ge=1, le=1024, description="dask: LocalCluster worker processes")
    threads_per_worker: int = Field(1, ge=1, le=64, description="dask: threads in each worker process")
    address: str | None = Field(
        None, description="dask: an existing scheduler (tcp://host:8786) instead of a LocalCluster"
    )
    shard_size: int = Field(
        256, ge=1, le=1_000_000, description="Examples per labeling task sent to a worker"
    )

    @model_validator(mode="after")
    def _address_needs_dask(self) -> RunnerConfig:
        if self.address is not None and self.kind != "dask":
            raise ValueError(f"runner.address is only used with kind: dask (kind is {self.kind!r})")
        return self

    @property
    def fans_out(self) -> bool:
        return self.kind != "local"
