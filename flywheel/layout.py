"""Names that several parts of Flywheel agree on: the files of a home and the environment variables.

Stated once here so that the CLI, the registry, `flywheel serve`, the flows and the dashboard (which
reads its warehouse path from the environment the CLI sets) can never drift apart.
"""

from __future__ import annotations

HOME_ENV = "FLYWHEEL_HOME"  # a home directory: warehouse, models, spool, champions manifest
CONFIG_ENV = "FLYWHEEL_CONFIG"  # the flywheel.yaml to load when --config is not given
WAREHOUSE_ENV = "FLYWHEEL_WAREHOUSE"  # the DuckDB file the dashboard reads
MANIFEST_NAME = "champions.json"  # in the home: which model serves each workload
SPOOL_DIR = "spool"  # in the home, unless serve.spool_dir says otherwise
DEFAULT_HOME = ".flywheel"
WAREHOUSE_FILE = "warehouse.duckdb"  # in the home, unless the config's `warehouse` says otherwise
