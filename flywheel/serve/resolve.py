"""Which workload a call belongs to, when the application changed nothing but its base_url.

In order: the request's `model` is a workload id; a configured alias (serve.aliases); a model name
the workload's logs used (learned at training, in the champion's bundle); then, among the workloads
still in question (or all, when the name told nothing), the one whose learned prompt template the
request starts with. No match, or several, is a 404 that lists the choices.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flywheel.bundle import Bundle
from flywheel.serve.responses import ApiError
from flywheel.serve.settings import ServeSettings


def resolve_workload(settings: ServeSettings, bundles: Mapping[str, Bundle], payload: dict[str, Any]) -> str:
    model = payload.get("model")
    if model in settings.workloads:
        return str(model)
    if model in settings.serve.aliases:
        return settings.serve.aliases[model]
    served = {w: b for w, b in bundles.items() if w in settings.workloads}
    by_name = sorted(w for w, b in served.items() if model in b.request_models)
    if len(by_name) == 1:
        return by_name[0]
    pool = by_name or sorted(served)
    by_template = [w for w in pool if served[w].matches_template(payload)]
    if len(by_template) == 1:
        return by_template[0]
    raise _not_found(settings, served, model, by_name or by_template)


def _not_found(
    settings: ServeSettings, bundles: Mapping[str, Bundle], model: Any, ambiguous: list[str]
) -> ApiError:
    if ambiguous:
        message = (
            f"model {model!r} matches several workloads ({', '.join(ambiguous)}) and the prompt does "
            "not tell them apart: send one of their ids as `model`"
        )
    else:
        learned = sorted({name for b in bundles.values() for name in b.request_models})
        known = ", ".join(model_names(settings, bundles)) or "none"
        message = f"model {model!r} is not served here (models: {known})"
        if learned:
            message += f"; model names learned from logs: {', '.join(learned)}"
    return ApiError(404, message, code="model_not_found", param="model")


def model_names(settings: ServeSettings, bundles: Mapping[str, Bundle]) -> list[str]:
    """What /v1/models lists: workload ids, aliases, and logged model names that name one workload."""
    owners: dict[str, set[str]] = {}
    for workload_id, bundle in bundles.items():
        for name in bundle.request_models:
            owners.setdefault(name, set()).add(workload_id)
    learned = {name for name, workloads in owners.items() if len(workloads) == 1}
    return sorted({*settings.model_names, *learned})
