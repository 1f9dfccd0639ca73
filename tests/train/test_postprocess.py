from __future__ import annotations

import pytest
import torch

from flywheel.train.postprocess import count_parameters, drop_layers, layers_to_drop, quantize_int8
from flywheel.train.scratch import build_scratch_model, train_tokenizer


@pytest.fixture(scope="module")
def tiny():
    tokenizer = train_tokenizer(["refund my order", "billing question", "where is it"] * 10, 300)
    return build_scratch_model(tokenizer, "tiny", 64, seed=0), tokenizer


def test_layers_to_drop_keeps_the_top_block() -> None:
    assert layers_to_drop(4, 0) == []
    assert layers_to_drop(4, 1) == [2]
    assert layers_to_drop(6, 2) == [3, 4]
    assert layers_to_drop(4, [3, 1, 1]) == [1, 3]
    with pytest.raises(ValueError, match="cannot drop 4 of 4"):
        layers_to_drop(4, 4)
    with pytest.raises(ValueError, match="cannot drop layers"):
        layers_to_drop(4, [7])


def test_dropped_layers_still_generate_with_a_kv_cache(tiny) -> None:
    import copy

    model, tokenizer = tiny
    pruned = drop_layers(copy.deepcopy(model), [1, 2])
    assert pruned.config.num_hidden_layers == 2
    assert [layer.self_attn.layer_idx for layer in pruned.model.layers] == [0, 1]
    assert count_parameters(pruned) < count_parameters(model)
    inputs = tokenizer(["<|user|>refund<|end|><|assistant|>"], return_tensors="pt", add_special_tokens=False)
    out = pruned.generate(**inputs, max_new_tokens=4, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] <= inputs["input_ids"].shape[1] + 4


def test_int8_keeps_outputs_close_and_counts_parameters(tiny) -> None:
    import copy

    model, tokenizer = tiny
    inputs = tokenizer(["<|user|>billing<|end|>"], return_tensors="pt", add_special_tokens=False)
    quantized = quantize_int8(copy.deepcopy(model))
    with torch.no_grad():
        reference = model.eval()(**inputs).logits.softmax(-1)
        approx = quantized(**inputs).logits.softmax(-1)
    assert (reference - approx).abs().max() < 0.05
    assert count_parameters(quantized) == count_parameters(model)
