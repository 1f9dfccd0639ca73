"""Efficient-tuning methods on a tiny scratch Llama: what trains and what must stay frozen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from flywheel.config import StudentConfig, WorkloadConfig
from flywheel.train.causal import tokenizer_corpus
from flywheel.train.config import resolve_settings
from flywheel.train.formatting import messages_row
from flywheel.train.hardware import detect_hardware
from flywheel.train.postprocess import merge_adapters
from flywheel.train.scratch import build_scratch_model, train_tokenizer
from flywheel.train.sft import fit_sft
from tests.train.conftest import tiny_options

pytestmark = pytest.mark.slow
WORKLOAD = WorkloadConfig(id="w", task="classification", labels=["billing", "refund"])


@pytest.fixture(scope="module")
def tokenizer(routing):
    return train_tokenizer(tokenizer_corpus(routing[0][:200], "classification", False), 512)


def fit(method: str, tokenizer, routing, tmp_path: Path, **options: object):
    settings = resolve_settings(
        StudentConfig(
            name=method, method=method, batch_size=4, max_seq_length=96, options=tiny_options(**options)
        ),
        WORKLOAD,
    )
    model = build_scratch_model(tokenizer, "tiny", 96, seed=0)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    rows = [messages_row(e, "classification") for e in routing[0][:32]]
    result = fit_sft(model, tokenizer, rows, settings, detect_hardware(), tmp_path / method, loss="assistant")
    return before, result


def changed(a: torch.Tensor, b: torch.Tensor) -> bool:
    return not torch.equal(a, b)


def test_lora_trains_adapters_and_leaves_base_weights_untouched(tokenizer, routing, tmp_path: Path) -> None:
    before, result = fit("lora", tokenizer, routing, tmp_path, modules_to_save=[], lora_r=4)
    params = dict(result.model.named_parameters())
    lora_b = [name for name in params if "lora_B" in name]
    assert lora_b and all(params[name].abs().sum() > 0 for name in lora_b)  # B starts at zero
    base = {}
    for name, param in params.items():
        if "lora_" in name:
            continue
        original = name.replace("base_model.model.", "").replace(".base_layer", "")
        base[original] = param
        assert torch.equal(param, before[original]), f"base weight {original} changed"
    assert len(base) == len(before)
    trainable = sum(p.numel() for p in params.values() if p.requires_grad)
    assert trainable < 0.1 * sum(p.numel() for p in before.values())

    inputs = tokenizer(
        ["<|user|>refund please<|end|><|assistant|>"], return_tensors="pt", add_special_tokens=False
    )
    with torch.no_grad():
        adapted = result.model.eval()(**inputs).logits
        merged_model = merge_adapters(result.model)
        merged = merged_model(**inputs).logits
    assert torch.allclose(adapted, merged, atol=1e-4)
    assert not any("lora" in name for name, _ in merged_model.named_parameters())


def test_ia3_trains_only_its_scaling_vectors(tokenizer, routing, tmp_path: Path) -> None:
    _, result = fit("ia3", tokenizer, routing, tmp_path)
    trainable = {name: p for name, p in result.model.named_parameters() if p.requires_grad}
    assert trainable and all("ia3_l" in name for name in trainable)
    assert any(changed(p, torch.ones_like(p)) for p in trainable.values())


def test_top_k_layers_freezes_the_lower_layers(tokenizer, routing, tmp_path: Path) -> None:
    before, result = fit("top-k-layers", tokenizer, routing, tmp_path, top_k_layers=1)
    after = dict(result.model.named_parameters())
    assert torch.equal(
        after["model.layers.0.mlp.up_proj.weight"], before["model.layers.0.mlp.up_proj.weight"]
    )
    assert torch.equal(after["model.embed_tokens.weight"], before["model.embed_tokens.weight"])
    assert changed(after["model.layers.3.mlp.up_proj.weight"], before["model.layers.3.mlp.up_proj.weight"])
    assert changed(after["lm_head.weight"], before["lm_head.weight"])


@pytest.mark.parametrize(
    ("method", "options"),
    [("prompt-tuning", {"num_virtual_tokens": 4}), ("lora", {"lora_r": 4, "postprocess": {"merge": False}})],
)
def test_adapters_kept_apart_save_and_reload(
    method, options, tmp_path: Path, routing, demo_workloads
) -> None:
    from safetensors import safe_open

    from flywheel.train import load_student, train_candidate
    from tests.train.conftest import tiny_student

    train, val, evaluation = routing
    trained = train_candidate(
        tiny_student(method, method=method, options=options),
        demo_workloads["support-routing"],
        train[:24],
        val,
        out_dir=tmp_path,
        snapshot_id=None,
        warehouse=None,
    )
    assert (trained.path / "adapter" / "adapter_config.json").exists()
    with safe_open(str(trained.path / "model.safetensors"), "pt") as weights:
        assert not any("lora" in key or "base_layer" in key for key in weights.keys())  # noqa: SIM118
    student = load_student(trained.path)
    assert student.manifest["adapter"] == "adapter"
    predictions = student.predict(evaluation[:2])
    assert [p.message["role"] for p in predictions] == ["assistant", "assistant"]
