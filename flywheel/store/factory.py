"""The one place a warehouse is opened: a DuckDB file or a DuckLake, by `warehouse.backend`."""

from __future__ import annotations

from pathlib import Path

from flywheel.config.warehouse import WarehouseConfig
from flywheel.store.db import DEFAULT_TIMEOUT_S, Warehouse
from flywheel.store.lake import LakeWarehouse

LAKE_PREFIX = "ducklake:"


def open_warehouse(config: WarehouseConfig, home: Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> Warehouse:
    """The warehouse the config names; relative paths are relative to `home`."""
    if config.backend == "ducklake":
        return LakeWarehouse(config.catalog_target(home), config.data_target(home), timeout_s, local_dir=home)
    return Warehouse(config.file(home), timeout_s)


def warehouse_at(location: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> Warehouse:
    """A warehouse from its `location` (what the CLI hands the dashboard in FLYWHEEL_WAREHOUSE):
    `ducklake:<catalog>` opens an existing lake, anything else is a DuckDB file."""
    text = str(location)
    if text.startswith(LAKE_PREFIX):
        return LakeWarehouse(text.removeprefix(LAKE_PREFIX), None, timeout_s)
    return Warehouse(Path(text).expanduser(), timeout_s)
