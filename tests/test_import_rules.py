"""Import rules the layout depends on, checked on the source (every import, also inside functions)
and at run time: the library never imports Prefect, flows or dashboards; serving never opens the
warehouse (flywheel.store), so a server runs next to a busy writer without touching its file."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "flywheel"
# The app on top of the library: the command line (it may start flows and the dashboard), the demo,
# the public-data recipes and the test/demo doubles (a fake OpenAI server). The library imports none.
APP_PACKAGES = ("cli", "demo", "recipes", "testing")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def library_files() -> list[Path]:
    return [p for p in LIBRARY.rglob("*.py") if p.relative_to(LIBRARY).parts[0] not in APP_PACKAGES]


def test_the_library_never_imports_prefect_flows_or_dashboards() -> None:
    banned = ("prefect", "flows", "dashboards")
    app = tuple(f"flywheel.{name}" for name in APP_PACKAGES)
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.split(".")[0] in banned
                                            or m.startswith(app))
        for path in library_files()
    }  # fmt: skip
    assert {k: v for k, v in offenders.items() if v} == {}


def test_serving_never_imports_the_warehouse() -> None:
    serving = [
        *(LIBRARY / "serve").glob("*.py"),
        *(LIBRARY / "bundle").glob("*.py"),
        *(LIBRARY / "answers").glob("*.py"),
    ]
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            m for m in imported_modules(path) if m.startswith("flywheel.store")
        )
        for path in serving
        if path.name != "sources.py"  # bundle/sources.py: what training reads for a bundle
    }
    assert {k: v for k, v in offenders.items() if v} == {}
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, flywheel.serve.server, flywheel.bundle; "
         "print(sorted(m for m in sys.modules if m.startswith(('flywheel.store', 'prefect', 'flows'))))"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    assert loaded.stdout.strip() == "[]"


def test_the_cli_never_imports_the_dashboard() -> None:
    """Streamlit runs the dashboard in its own process; the CLI only finds its file."""
    offenders = {
        str(path.relative_to(ROOT)): sorted(m for m in imported_modules(path) if m.startswith("dashboards"))
        for path in (LIBRARY / "cli").glob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _module_level_imports(path: Path) -> set[str]:
    """Imports run when the module loads (not those inside functions or under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_library_packages_form_no_import_cycle() -> None:
    """flywheel.<a> -> flywheel.<b> edges from module-level imports; a cycle means two packages can
    only be understood (and loaded) together."""
    graph: dict[str, set[str]] = {}
    for path in LIBRARY.rglob("*.py"):
        source = path.relative_to(LIBRARY).parts[0].removesuffix(".py")
        for module in _module_level_imports(path):
            parts = module.split(".")
            if parts[0] == "flywheel" and len(parts) > 1 and parts[1] != source:
                graph.setdefault(source, set()).add(parts[1])
    cycles = []
    for start in graph:
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*trail, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    assert cycles == []
