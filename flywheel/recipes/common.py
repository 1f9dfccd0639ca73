"""What every recipe shares: options, the output it reports, and writing its flywheel.yaml.

A recipe reads a public dataset where it lies (nothing is copied unless an option derives new traffic
from it: a subset or injected teacher noise), fills in a packaged YAML template (recipes/<name>.yaml)
with the data's paths, labels or schema, and writes `<out>/flywheel.yaml` with `home: <out>/.flywheel`,
so that `flywheel --config <out>/flywheel.yaml run -w <workload>` runs it like any user's workload.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from flywheel.config import FlywheelConfig, WorkloadConfig, load_config
from flywheel.records import Example

# <repo>/../shared/data: where the project's machines keep the public datasets (see the README).
DEFAULT_DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"


class RecipeDataMissing(FileNotFoundError):
    """The dataset a recipe needs is not where it was told to look; the message names the file."""


@dataclass(frozen=True, slots=True)
class RecipeOptions:
    """Knobs shared by the recipes (None: the template's value)."""

    noise: float = 0.0  # share of logged answers replaced by a random wrong one (a noisy teacher)
    limit: int | None = None  # a seeded random subset of this many training rows
    seed: int = 0
    epochs: float | None = None
    batch_size: int | None = None
    teacher_url: str | None = None  # an OpenAI-compatible endpoint for relabel/synthesize
    teacher_model: str | None = None
    k_votes: int | None = None
    api_key_env: str | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.noise < 1:
            raise ValueError(f"noise must be in [0, 1), got {self.noise}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")


@dataclass
class RecipeOutput:
    recipe: str
    workload_id: str
    config_path: Path
    home: Path
    traffic: list[str]
    held_out: list[str]
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def run_command(self) -> str:
        return f"flywheel --config {self.config_path} run -w {self.workload_id}"

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["config_path"], out["home"] = str(self.config_path), str(self.home)
        return out | {"run": self.run_command}


@dataclass(frozen=True)
class Recipe:
    name: str
    workload_id: str
    description: str
    write: Callable[[Path, Path, RecipeOptions], RecipeOutput]
    gold: Callable[[Path, WorkloadConfig], list[Example]]  # the held-out examples with gold answers
    required: tuple[str, ...]  # files (globs) that must exist under the data directory
    data_name: str | None = None  # its directory under ../shared/data when not the recipe's name

    def check_data(self, data: Path) -> None:
        for pattern in self.required:
            if not any(data.glob(pattern)):
                raise RecipeDataMissing(f"{self.name}: {data / pattern} not found (pass --data DIR)")


def load_template(name: str) -> dict[str, Any]:
    text = resources.files(__package__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def finish_config(
    template: dict[str, Any], out: Path, options: RecipeOptions, header: str
) -> tuple[Path, FlywheelConfig]:
    """Apply the shared options, write <out>/flywheel.yaml and validate it by loading it back."""
    out.mkdir(parents=True, exist_ok=True)
    config = dict(template)
    config["home"] = str((out / ".flywheel").resolve())
    teacher = dict(config.get("teacher") or {})
    for key, value in (
        ("base_url", options.teacher_url),
        ("model", options.teacher_model),
        ("k_votes", options.k_votes),
        ("api_key_env", options.api_key_env),
    ):
        if value is not None:
            teacher[key] = value
    config["teacher"] = teacher
    for workload in config["workloads"]:
        for student in workload.get("students") or []:
            for key in ("epochs", "batch_size"):
                if getattr(options, key) is not None:
                    student[key] = getattr(options, key)
    path = out / "flywheel.yaml"
    body = yaml.safe_dump(config, sort_keys=False, width=110, allow_unicode=True)
    path.write_text(header + body, encoding="utf-8")
    return path, load_config(path)


def fill(text: str, **values: str) -> str:
    """Replace {name} placeholders (and only those: JSON braces in the text stay as they are)."""
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    return text


def example_id(split: str, index: int, text: str) -> str:
    return hashlib.sha256(f"{split}:{index}:{text}".encode()).hexdigest()[:16]


def system_prompt(workload: WorkloadConfig) -> str | None:
    """The constant system prompt the workload's traffic carries (its first source's mapping)."""
    for source in workload.sources:
        if source.mapping is not None and source.mapping.system_prompt:
            return source.mapping.system_prompt
    return None


def chat(system: str | None, user: str) -> list[dict[str, Any]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
