"""The tau-bench retail environment read in place: policy, tool schemas, tool code, database, tasks.

The directory is a copy of sierra-research/tau-bench's retail environment (see its README.md):
`tools.json` (16 OpenAI tool schemas), `env/wiki.md` (the agent policy), `env/tools/*.py` (the tool
implementations, each `invoke(data, **kwargs) -> str`), `env/data/{users,orders,products}.json` (the
database the tools read and write) and `env/tasks_train.py` (500 `Task(...)` literals).

Tasks are read with `ast` (the file is only literals, so nothing of it is executed and an odd entry is
named by its line). Tools ARE executed, since their outputs must be the real ones: they import
`tau_bench.envs.tool.Tool`, which this module provides as a shim in `sys.modules` only while they are
imported (a real tau_bench package, if installed, is left as it was). Each task runs against its own
fresh copy of the database, parsed again from the file's bytes (faster than deepcopy).
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

TOOLS_JSON = "tools.json"
WIKI = "env/wiki.md"
TASKS = "env/tasks_train.py"
TOOLS_DIR = "env/tools"
TABLES = ("users", "orders", "products")
REQUIRED = (TOOLS_JSON, WIKI, TASKS, f"{TOOLS_DIR}/__init__.py", *(f"env/data/{t}.json" for t in TABLES))
SHIM_MODULES = ("tau_bench", "tau_bench.envs", "tau_bench.envs.tool")


class TauDataError(ValueError):
    """The tau-bench directory is missing a file or a file has an unexpected shape (file:line named)."""


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Task:
    index: int
    user_id: str
    instruction: str
    actions: tuple[Action, ...]
    outputs: tuple[str, ...] = ()
    where: str = ""  # file:line of the Task(...) literal


@dataclass
class TauRetail:
    root: Path
    policy: str
    tools: list[dict[str, Any]]
    invokers: dict[str, Callable[..., str]]
    tasks: list[Task]
    database_bytes: dict[str, bytes] = field(repr=False)

    def fresh_database(self) -> dict[str, Any]:
        """A private copy of the whole database: tools mutate it, so every task gets its own."""
        return {table: orjson.loads(raw) for table, raw in self.database_bytes.items()}

    def invoke(self, data: dict[str, Any], name: str, arguments: dict[str, Any]) -> str:
        if name not in self.invokers:
            raise TauDataError(f"{self.root / TOOLS_DIR}: no implementation of tool {name!r}")
        return self.invokers[name](data, **arguments)


def load_env(root: Path) -> TauRetail:
    """Read the environment in `root`; TauDataError names the first missing or malformed file."""
    root = Path(root)
    for name in REQUIRED:
        if not (root / name).is_file():
            raise TauDataError(f"tau-bench retail: {root / name} not found (pass the dataset directory)")
    tools = _read_tools(root / TOOLS_JSON)
    invokers = load_invokers(root / TOOLS_DIR)
    missing = sorted({t["function"]["name"] for t in tools} - set(invokers))
    if missing:
        raise TauDataError(f"{root / TOOLS_DIR}: tools.json names tools with no implementation: {missing}")
    return TauRetail(
        root=root,
        policy=(root / WIKI).read_text(encoding="utf-8").strip(),
        tools=tools,
        invokers=invokers,
        tasks=read_tasks(root / TASKS),
        database_bytes={t: (root / "env" / "data" / f"{t}.json").read_bytes() for t in TABLES},
    )


def _read_tools(path: Path) -> list[dict[str, Any]]:
    try:
        tools = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise TauDataError(f"{path}: invalid JSON ({exc})") from None
    if not isinstance(tools, list):
        raise TauDataError(f"{path}: expected a list of tool schemas")
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise TauDataError(f"{path}: tool [{index}] has no function.name")
    return tools


# --- tasks: the Task(...)/Action(...) literals, read without executing the file ---------------------


def read_tasks(path: Path) -> list[Task]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise TauDataError(f"{path}:{exc.lineno}: not valid Python ({exc.msg})") from None
    calls = [node for node in _task_list(tree, path).elts]
    return [_task(call, index, path) for index, call in enumerate(calls)]


def _task_list(tree: ast.Module, path: Path) -> ast.List:
    for node in tree.body:
        named = isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id.startswith("TASKS") for t in node.targets
        )
        if named and isinstance(node.value, ast.List):
            return node.value
    raise TauDataError(f"{path}: no `TASKS... = [...]` list found")


def _task(node: ast.expr, index: int, path: Path) -> Task:
    where = f"{path}:{getattr(node, 'lineno', '?')}"
    fields = _call_fields(node, "Task", where)
    try:
        user_id, instruction = fields["user_id"], fields["instruction"]
        actions = tuple(Action(str(a["name"]), dict(a.get("kwargs") or {})) for a in fields["actions"])
    except (KeyError, TypeError) as exc:
        raise TauDataError(f"{where}: Task is missing or has a malformed field ({exc})") from None
    if not isinstance(user_id, str) or not isinstance(instruction, str):
        raise TauDataError(f"{where}: Task.user_id and Task.instruction must be strings")
    return Task(index, user_id, instruction, actions, tuple(fields.get("outputs") or ()), where)


def _call_fields(node: ast.expr, name: str, where: str) -> dict[str, Any]:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name):
        raise TauDataError(f"{where}: expected a call {name}(...)")
    if node.args:
        raise TauDataError(f"{where}: {name}(...) must use keyword arguments")
    return {kw.arg: _literal(kw.value, where) for kw in node.keywords if kw.arg}


def _literal(node: ast.expr, where: str) -> Any:
    """A Python literal, where Action(...) calls (the only calls allowed) become plain dicts."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Action":
        return _call_fields(node, "Action", f"{where.rsplit(':', 1)[0]}:{node.lineno}")
    if isinstance(node, ast.List):
        return [_literal(element, where) for element in node.elts]
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise TauDataError(f"{where.rsplit(':', 1)[0]}:{node.lineno}: not a literal value") from None


# --- tools: the real implementations, imported with a tau_bench shim ---------------------------------


def load_invokers(tools_dir: Path) -> dict[str, Callable[..., str]]:
    """Tool name -> its `invoke(data, **kwargs)`, from the package's ALL_TOOLS list."""
    package = "_flywheel_tau_tools_" + hashlib.sha256(str(tools_dir.resolve()).encode()).hexdigest()[:12]
    with _tau_bench_shim():
        spec = importlib.util.spec_from_file_location(
            package, tools_dir / "__init__.py", submodule_search_locations=[str(tools_dir)]
        )
        if spec is None or spec.loader is None:
            raise TauDataError(f"{tools_dir}: cannot import the tools package")
        module = importlib.util.module_from_spec(spec)
        sys.modules[package] = module  # its `from .x import X` lines look the package up here
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the dataset's own code: any failure is a data problem, named
            sys.modules.pop(package, None)
            raise TauDataError(
                f"{tools_dir}: importing the tools failed ({type(exc).__name__}: {exc})"
            ) from None
    invokers = {}
    for tool in getattr(module, "ALL_TOOLS", []):
        invokers[tool.get_info()["function"]["name"]] = tool.invoke
    if not invokers:
        raise TauDataError(f"{tools_dir}/__init__.py: no ALL_TOOLS list of tool classes")
    return invokers


class _Tool:
    """The base class tau-bench's tools inherit from: two static methods they all override."""

    @staticmethod
    def invoke(*args: Any, **kwargs: Any) -> str:
        raise NotImplementedError

    @staticmethod
    def get_info() -> dict[str, Any]:
        raise NotImplementedError


@contextlib.contextmanager
def _tau_bench_shim() -> Iterator[None]:
    """`tau_bench.envs.tool.Tool` while the tools import, unless a real tau_bench is importable."""
    if importlib.util.find_spec("tau_bench") is not None:
        yield
        return
    saved = {name: sys.modules.get(name) for name in SHIM_MODULES}
    modules = {name: types.ModuleType(name) for name in SHIM_MODULES}
    modules["tau_bench.envs.tool"].Tool = _Tool  # type: ignore[attr-defined]
    modules["tau_bench"].envs = modules["tau_bench.envs"]  # type: ignore[attr-defined]
    modules["tau_bench.envs"].tool = modules["tau_bench.envs.tool"]  # type: ignore[attr-defined]
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = previous
