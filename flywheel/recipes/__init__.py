"""Workload recipes: public datasets run through the loop as if they were production traffic.

    flywheel recipe banking77 --data ../shared/data/banking77 --out runs/banking77
    flywheel --config runs/banking77/flywheel.yaml run -w banking77
    flywheel --config runs/banking77/flywheel.yaml recipe-score banking77 --data ../shared/data/banking77

`write_recipe` writes the workload's flywheel.yaml (and derived traffic, when an option asks for it);
`flywheel.recipes.scoring.score_on_gold` scores the promoted student on the recipe's held-out gold.
"""

from __future__ import annotations

from pathlib import Path

from flywheel.recipes import banking77, snips, tau_recipe
from flywheel.recipes.common import (
    DEFAULT_DATA_ROOT,
    Recipe,
    RecipeDataMissing,
    RecipeOptions,
    RecipeOutput,
)

RECIPES: dict[str, Recipe] = {r.name: r for r in (banking77.RECIPE, snips.RECIPE, tau_recipe.RECIPE)}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r} (known: {', '.join(sorted(RECIPES))})")
    return RECIPES[name]


def default_data(name: str) -> Path:
    """<repo>/../shared/data/<name>: where the project's machines keep the public datasets."""
    recipe = RECIPES.get(name)
    return DEFAULT_DATA_ROOT / (recipe.data_name if recipe and recipe.data_name else name)


def write_recipe(
    name: str, data: Path | None, out: Path, options: RecipeOptions | None = None
) -> RecipeOutput:
    """Check the data is there, then write <out>/flywheel.yaml (RecipeDataMissing when it is not)."""
    recipe = get_recipe(name)
    data = Path(data) if data is not None else default_data(name)
    recipe.check_data(data)
    return recipe.write(data.resolve(), Path(out), options or RecipeOptions())


__all__ = [
    "RECIPES",
    "Recipe",
    "RecipeDataMissing",
    "RecipeOptions",
    "RecipeOutput",
    "default_data",
    "get_recipe",
    "write_recipe",
]
