"""The `encoder-extractor` kind: MiniLM with a token tagger and choice heads (flywheel.train.extractor):
values copied from the user's text, function names and enums from closed sets seen in training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.config import ConfigError
from flywheel.train.kinds import KindSpec


def fit(context: Any, train: list, val: list, manifest: dict[str, Any]) -> Any:
    from flywheel.train.pipeline import fit_extractor_candidate

    return fit_extractor_candidate(context, train, manifest)


def student(manifest: dict[str, Any], model: Any, tokenizer: Any) -> Any:
    from flywheel.train.extractor import ExtractorStudent

    return ExtractorStudent(manifest, model, tokenizer)


def load(path: Path, manifest: dict[str, Any], batch_size: int, device: str) -> Any:
    from flywheel.train.extractor import ExtractorStudent, load_extractor_weights

    model, tokenizer = load_extractor_weights(path, manifest)
    return ExtractorStudent(manifest, model.to(device), tokenizer, batch_size)


def check(candidate: Any, workload: Any, options: Any, where: str) -> None:
    if options.postprocess.prune or options.postprocess.quantize:
        raise ConfigError(f"{where}: kind encoder-extractor has no prune/quantize variants")


KIND = KindSpec(
    name="encoder-extractor",
    fit=fit,
    student=student,
    load=load,
    tasks=frozenset({"extraction", "tool_call"}),
    methods=frozenset({"full", "top-k-layers"}),
    # The tagger and choosers start random on top of a pretrained encoder: a higher rate than a
    # classifier's, which 3 epochs on ~1k answers need.
    learning_rates={"full": 2e-4, "top-k-layers": 3e-4},
    adapter_lr=5e-4,
    encoder=True,
    check=check,
    description="MiniLM token tagger + choice heads; closed sets of function names and enums",
)
