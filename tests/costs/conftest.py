from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.costs.fixture_warehouse import build_fixture_warehouse


@pytest.fixture(scope="session")
def fixture_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture warehouse, built once per session: read it, never write it (copy it instead)."""
    return build_fixture_warehouse(tmp_path_factory.mktemp("costs") / "warehouse.duckdb").path


@pytest.fixture
def fixture_copy(fixture_db: Path, tmp_path: Path) -> Path:
    """A private, writable copy of the fixture warehouse inside `tmp_path/home`."""
    target = tmp_path / "home" / "warehouse.duckdb"
    target.parent.mkdir(parents=True)
    shutil.copy(fixture_db, target)
    return target
