"""The `warehouse:` section: one DuckDB file (the default) or a DuckLake that many writers share.

`warehouse: warehouse.duckdb` (a plain string, the original form) still means a DuckDB file. The
mapping form picks the backend:

    warehouse:
      backend: ducklake
      catalog: postgres:dbname=flywheel host=db.internal user=flywheel   # or sqlite:lake/catalog.sqlite
      data_path: lake/data/                                              # a directory every writer mounts

Relative paths (the DuckDB file, a SQLite catalog, the data_path) are relative to home. A Postgres
password never goes in the YAML: libpq reads PGPASSWORD (or ~/.pgpass) from the environment. Object
storage (s3://...) is refused for now: DuckDB reaches it through its httpfs extension, which Flywheel
does not load yet (nothing here could test it).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from flywheel.layout import WAREHOUSE_FILE

CATALOG_KINDS = ("sqlite", "postgres")
PASSWORD_RE = re.compile(r"(^|\s)password\s*=", re.IGNORECASE)
REMOTE_RE = re.compile(r"^[a-z][a-z0-9+]*://", re.IGNORECASE)  # s3://, gs://, az://, https://


class WarehouseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["duckdb", "ducklake"] = Field(
        "duckdb", description="duckdb: one file, one writer at a time; ducklake: a shared catalog + Parquet"
    )
    path: str = Field(WAREHOUSE_FILE, description="duckdb: the file, relative to home")
    catalog: str | None = Field(
        None, description="ducklake: sqlite:<file relative to home> or postgres:<libpq DSN, no password>"
    )
    data_path: str | None = Field(
        None, description="ducklake: the directory the Parquet files go to (relative to home)"
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_path(cls, data: Any) -> Any:
        """`warehouse: some.duckdb` is the original form: a DuckDB file."""
        return {"backend": "duckdb", "path": data} if isinstance(data, str) else data

    @field_validator("catalog")
    @classmethod
    def _catalog_kind(cls, value: str | None) -> str | None:
        if value is None:
            return value
        kind, sep, rest = value.partition(":")
        if not sep or kind not in CATALOG_KINDS or not rest.strip():
            raise ValueError(f"catalog must be sqlite:<file> or postgres:<dsn>, got {value!r}")
        if kind == "postgres" and PASSWORD_RE.search(rest):
            raise ValueError("catalog DSN holds a password: set PGPASSWORD in the environment instead")
        return value

    @field_validator("data_path")
    @classmethod
    def _local_data_path(cls, value: str | None) -> str | None:
        if value is not None and REMOTE_RE.match(value):
            raise ValueError(
                f"data_path {value!r}: object storage needs DuckDB's httpfs extension, which Flywheel does "
                "not load yet; use a directory every writer mounts"
            )
        return value

    @model_validator(mode="after")
    def _lake_is_complete(self) -> WarehouseConfig:
        if self.backend == "ducklake" and (not self.catalog or not self.data_path):
            raise ValueError("backend ducklake needs both `catalog` and `data_path`")
        if self.backend == "duckdb" and (self.catalog or self.data_path):
            raise ValueError("`catalog` and `data_path` are for backend ducklake (backend is duckdb)")
        return self

    def file(self, home: Path) -> Path:
        return _under(home, self.path)

    def catalog_target(self, home: Path) -> str:
        """The catalog as DuckLake's ATTACH names it: `sqlite:/abs/file` or `postgres:<dsn>`."""
        kind, _, rest = str(self.catalog).partition(":")
        return f"sqlite:{_under(home, rest.strip())}" if kind == "sqlite" else f"postgres:{rest.strip()}"

    def data_target(self, home: Path) -> str:
        """The data directory with a trailing slash (DuckLake joins file names onto it)."""
        return str(_under(home, str(self.data_path))).rstrip("/") + "/"


def _under(home: Path, raw: str) -> Path:
    path = Path(raw).expanduser()
    return path if path.is_absolute() else home / path
