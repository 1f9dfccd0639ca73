"""Loading a pretrained model or tokenizer by Hub id or local path, with one clear line when it fails.

transformers answers a base it cannot find with a long chained traceback (a missing directory is
taken for a Hub id, then the Hub is offline or unreachable). A training run stops instead with
`BaseUnavailable`: which base, why (no such directory, a directory that is not a saved model, not in
the local Hugging Face cache while offline, or the Hub's own first line) and how to point `base:` at a
local copy. It is a ValueError, which `flywheel train` / `run` report as one line, exit code 1.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

OFFLINE_VALUES = frozenset(("1", "true", "yes", "on"))


class BaseUnavailable(ValueError):
    """A base (student, or teacher for logit distillation) that cannot be loaded here."""


def load_base(loader: Callable[..., Any], base: str, role: str, **kwargs: Any) -> Any:
    """`loader(base, **kwargs)` (a from_pretrained), or BaseUnavailable naming the base and the fix."""
    try:
        return loader(base, **kwargs)
    except (OSError, ValueError) as exc:  # huggingface_hub's and transformers' load errors are these
        raise BaseUnavailable(unavailable_message(base, role, exc)) from None


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in OFFLINE_VALUES


def looks_like_path(base: str) -> bool:
    """A Hub id is `name` or `owner/name`; anything else can only be a directory."""
    return base.startswith(("/", ".", "~")) or base.count("/") > 1 or (os.sep != "/" and os.sep in base)


def unavailable_message(base: str, role: str, exc: BaseException) -> str:
    path = Path(base).expanduser()
    detail = first_line(exc)
    local_fix = (
        "set `base:` in flywheel.yaml to a local directory holding config.json, the weights and the "
        "tokenizer (e.g. made where the Hub is reachable with `hf download <hub-id> --local-dir DIR`)"
    )
    if path.is_dir():
        why = f"{path} is not a saved model directory ({detail})"
    elif looks_like_path(base):
        why = f"no such directory {path}"
    elif hub_offline():
        why = (
            "it is not a local directory, and it is not in the local Hugging Face cache while "
            "HF_HUB_OFFLINE=1 forbids downloading it"
        )
        local_fix = (
            f"download it where the Hub is reachable (`hf download {base} --local-dir DIR`) and set "
            "`base: DIR` in flywheel.yaml, or point HF_HOME at a cache that holds it"
        )
    else:
        why = f"it is not a local directory and the Hugging Face Hub did not provide it ({detail})"
        local_fix = (
            f"check the id, or download it where the Hub is reachable (`hf download {base} --local-dir "
            "DIR`) and set `base: DIR` in flywheel.yaml"
        )
    return f"{role} base {base!r} cannot be loaded: {why}. To use a local copy, {local_fix}."


def first_line(exc: BaseException, limit: int = 160) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
