"""Student kinds as a registry: each kind is one module here that defines `KIND = KindSpec(...)`
(or `KINDS`, a tuple, for closely related kinds).

A kind says which tasks and methods it supports, its default learning rates, its own options model
(read from a candidate's `options.kind_options`), how it trains (`fit`: a RunContext and the data ->
a `Built` model with its manifest entries), how a just-trained model answers (`student`) and how a
saved one is loaded (`load`). Training (flywheel.train.pipeline), loading (flywheel.train.student)
and settings (flywheel.train.config) ask the registry instead of testing kind names, so adding a
kind is adding one module to this package. Modules here import heavy libraries inside functions only:
the registry is read while validating a config.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

# fit(context, train, val, manifest) -> Built ; student(manifest, model, tokenizer) -> Predictor ;
# load(path, manifest, batch_size, device) -> Predictor ; check(candidate, workload, options, where)
Fit = Callable[[Any, list, list, dict[str, Any]], Any]
MakeStudent = Callable[[dict[str, Any], Any, Any], Any]
Load = Callable[[Path, dict[str, Any], int, str], Any]
Check = Callable[[Any, Any, Any, str], None]


@dataclass(frozen=True)
class KindSpec:
    name: str
    fit: Fit
    student: MakeStudent
    load: Load
    tasks: frozenset[str] | None = None  # None: every task type
    methods: frozenset[str] | None = None  # None: every method
    learning_rates: dict[str, float] = field(default_factory=dict)  # method -> default ("full" required)
    adapter_lr: float | None = None  # lora/ia3 default
    options: type[BaseModel] | None = None  # validates options.kind_options
    encoder: bool = False  # a pretrained encoder: base defaults to MiniLM, no logit distillation
    needs_base: bool = False
    truncation_side: str = "right"  # how it reads a long input, recorded in the bundle
    check: Check | None = None  # extra contract checks beyond tasks and methods
    description: str = ""


@functools.cache
def registry() -> dict[str, KindSpec]:
    """Every kind defined by a module of this package, by name."""
    found: dict[str, KindSpec] = {}
    for module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        loaded = importlib.import_module(f"{__name__}.{module.name}")
        specs = [getattr(loaded, "KIND", None), *getattr(loaded, "KINDS", ())]
        for spec in (s for s in specs if isinstance(s, KindSpec)):
            if spec.name in found:
                raise RuntimeError(f"student kind {spec.name!r} is defined twice")
            found[spec.name] = spec
    return found


def kind_names() -> list[str]:
    return sorted(registry())


def get_kind(name: str) -> KindSpec:
    try:
        return registry()[name]
    except KeyError:
        raise KeyError(f"unknown student kind {name!r} (known: {', '.join(kind_names())})") from None
