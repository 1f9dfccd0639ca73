"""The `flywheel` command line. Each stage registers its commands from its own module here.

Every module in this package except `app` is imported, so a stage adds a command by adding a file
that decorates functions with `@app.command()`; nothing else needs editing.
"""

import importlib
import pkgutil

from flywheel.cli.app import app

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "app":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["app"]
