"""Typer app, global options and the output contract shared by every command.

Contract: global `--home DIR` (env FLYWHEEL_HOME, default ./.flywheel) and `--config FILE` (env
FLYWHEEL_CONFIG, else ./flywheel.yaml when present). Every command takes `--json` and then prints
exactly one JSON object on stdout; humans get rich tables, and progress/errors go to stderr.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable

from flywheel.config import ConfigError, FlywheelConfig, load_config, resolve_home
from flywheel.config.warehouse import WarehouseConfig
from flywheel.layout import CONFIG_ENV, HOME_ENV
from flywheel.pricing import PriceCatalog
from flywheel.store.db import Warehouse
from flywheel.store.factory import open_warehouse

app = typer.Typer(
    name="flywheel",
    help="Turn production LLM traffic into a specialized small model, and keep it fresh.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True)
WIDE_COLUMNS = 240
out = Console()


class Table(RichTable):
    """A rich Table whose text cells and title are data, never markup: a label such as
    `[[[[analyst rating]]]]` prints as written. Style a cell with rich.text.Text instead.

    Cells wrap (fold) to fit the terminal instead of being cut with an ellipsis: a workload id or a
    decision is never shown as `tool-…`. `flywheel --wide` lays tables out on one line each.
    """

    def add_column(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overflow", "fold")
        super().add_column(*args, **kwargs)

    def __init__(self, *args: Any, title: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, title=escape(title) if isinstance(title, str) else title, **kwargs)

    def add_row(self, *cells: Any, **kwargs: Any) -> None:
        super().add_row(*(escape(c) if isinstance(c, str) else c for c in cells), **kwargs)


JsonOpt = typer.Option(False, "--json", help="Print exactly one JSON object on stdout.")
# Command groups: `flywheel labels import ...` (the commands live in flywheel/cli/labels.py).
labels_app = typer.Typer(help="Gold labels from people: import them onto logged interactions.")
app.add_typer(labels_app, name="labels", no_args_is_help=True)


@dataclass
class CliState:
    home_option: Path | None
    config_path: Path | None
    _config: FlywheelConfig | None = None

    @property
    def home(self) -> Path:
        """--home, else FLYWHEEL_HOME, else the config's `home`, else ./.flywheel."""
        if self.home_option is not None or os.environ.get(HOME_ENV):
            return resolve_home(self.home_option)
        return resolve_home(self.config.home if self.config else None)

    @property
    def config(self) -> FlywheelConfig | None:
        if self._config is None and self.config_path is not None:
            self._config = load_config(self.config_path)
        return self._config

    def require_config(self) -> FlywheelConfig:
        if self.config is None:
            raise ConfigError("no config: pass --config FILE, set FLYWHEEL_CONFIG, or run `flywheel init`")
        return self.config

    def warehouse(self) -> Warehouse:
        config = self.config
        return open_warehouse(config.warehouse if config else WarehouseConfig(), self.home)

    def prices(self) -> PriceCatalog:
        return PriceCatalog.load(self.config.prices if self.config else None)

    def sync_served(self) -> dict[str, int]:
        """Read what `flywheel serve` answered since the last look into the money views (no ingest)."""
        from flywheel.costs.served import sync_served_calls
        from flywheel.serve.settings import spool_dir

        serve = self.config.serve if self.config else None
        return sync_served_calls(self.warehouse(), spool_dir(serve, self.home)).as_dict()

    def teacher_models(self) -> dict[str, str]:
        """workload -> its configured teacher model (empty without a config)."""
        config = self.config
        return {w.id: config.teacher_for(w.id).model for w in config.workloads} if config else {}


@app.callback()
def main(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="Artifacts dir (env FLYWHEEL_HOME, default ./.flywheel)"
    ),
    config: Path | None = typer.Option(None, "--config", help="flywheel.yaml (env FLYWHEEL_CONFIG)"),
    wide: bool = typer.Option(False, "--wide", help="Print tables at full width (for logs and wide pages)"),
) -> None:
    if wide:
        out.width = WIDE_COLUMNS
    config_path = config or _default_config_path()
    ctx.obj = CliState(home_option=home, config_path=config_path)


def _default_config_path() -> Path | None:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    local = Path("flywheel.yaml")
    return local if local.exists() else None


def state(ctx: typer.Context) -> CliState:
    return ctx.obj


def emit(as_json: bool, payload: dict[str, Any], render: Callable[[], None] | None = None) -> None:
    """The one place a command's result is printed."""
    if as_json:
        sys.stdout.write(orjson.dumps(payload, default=str).decode() + "\n")
        sys.stdout.flush()
    elif render is not None:
        render()


def warn_all(messages: list[str]) -> None:
    """Warnings on stderr (in --json mode too: the payload carries them as well)."""
    for message in messages:
        err.print(f"[bold yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def fail(as_json: bool, message: str, code: int = 1, **extra: Any) -> NoReturn:
    """Report an error in one clear message (no traceback) and exit non-zero."""
    if as_json:
        emit(True, {"error": message, **extra})
    else:
        err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def guarded(as_json: bool) -> Iterator[None]:
    """Turn the library's user-facing errors into one clear message and a non-zero exit."""
    from flywheel.store.db import NoSnapshot, WarehouseBusy
    from flywheel.store.lake import LakeUnavailable

    try:
        yield
    except (ConfigError, WarehouseBusy, FileNotFoundError, NoSnapshot, LakeUnavailable) as exc:
        fail(as_json, str(exc), code=2 if isinstance(exc, ConfigError) else 1)


@contextmanager
def progress_bar(
    description: str, total: int | None = None, enabled: bool = True, refresh_thread: bool = True
) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr when it is a terminal; a silent counter otherwise.

    `refresh_thread=False` redraws on each advance instead of from rich's refresh thread, for work
    that forks processes: ingest forks its parse workers only while it runs a single thread.
    """
    if not enabled or not err.is_terminal:
        yield lambda n: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=err, transient=True, auto_refresh=refresh_thread) as bar:
        task = bar.add_task(description, total=total)

        def advance(n: int) -> None:
            bar.advance(task, n)
            if not refresh_thread:
                bar.refresh()

        yield advance
