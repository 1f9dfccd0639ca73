"""Declared dependencies match what the code imports (deptry over pyproject.toml's [tool.deptry]).

A module imported but not declared works only by luck (another package pulled it in); one declared but
never imported is dead weight unless pyproject says whose sake it is kept for.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_declared_dependencies_match_imports() -> None:
    deptry = shutil.which("deptry", path=str(Path(sys.executable).parent))
    if deptry is None:
        pytest.skip("deptry is not installed (it is in the dev extra: `make install`)")
    result = subprocess.run([deptry, "."], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
