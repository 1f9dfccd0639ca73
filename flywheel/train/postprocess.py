"""After training: merge adapters, drop layers (then heal), quantize to int8, and measure each variant.

Every variant is a complete artifact directory that `load_student` can open. int8 uses PyTorch dynamic
quantization of the Linear layers (CPU serving); its modules cannot go through `save_pretrained`, so
the directory holds config + tokenizer + a quantized state_dict instead of safetensors.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from flywheel.records import Example


def merge_adapters(model: Any) -> Any:
    """A plain transformers model: LoRA/IA3 folded into the base weights; other models unchanged."""
    from peft import PeftModel

    if not isinstance(model, PeftModel):
        return model
    if model.peft_config[model.active_adapter].is_prompt_learning:
        return model  # a soft prompt cannot be folded into weights; keep the adapter
    return model.merge_and_unload()


def layers_to_drop(total: int, prune: int | list[int]) -> list[int]:
    """Indices to remove. A count drops the blocks just below the top one (they matter least)."""
    if isinstance(prune, list):
        bad = [i for i in prune if not 0 <= i < total]
        if bad or len(set(prune)) >= total:
            raise ValueError(f"cannot drop layers {prune} of a {total}-layer model")
        return sorted(set(prune))
    if prune <= 0:
        return []
    if prune >= total:
        raise ValueError(f"cannot drop {prune} of {total} layers")
    top = total - 1
    return list(range(top - prune, top))


def drop_layers(model: Any, indices: list[int]) -> Any:
    """Remove transformer blocks in place; renumber attention layer_idx (KV cache slots)."""
    import torch

    from flywheel.train.sft import decoder_layers

    layers = decoder_layers(model)
    keep = [block for i, block in enumerate(layers) if i not in set(indices)]
    for new_index, block in enumerate(keep):
        for module in block.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    parent_name = next(name for name, module in model.named_modules() if module is layers)
    parent = model.get_submodule(parent_name.rsplit(".", 1)[0]) if "." in parent_name else model
    setattr(parent, parent_name.rsplit(".", 1)[-1], torch.nn.ModuleList(keep))
    model.config.num_hidden_layers = len(keep)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [
            t for i, t in enumerate(model.config.layer_types) if i not in set(indices)
        ]
    return model


def quantize_int8(model: Any) -> Any:
    """Dynamic int8 Linear layers (weights int8, activations quantized on the fly) for CPU."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(
            model.cpu().eval(), {torch.nn.Linear}, dtype=torch.qint8
        )


def save_int8(model: Any, tokenizer: Any, directory: Path, weights_name: str) -> None:
    import torch

    directory.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(directory))
    if getattr(model, "generation_config", None) is not None and model.can_generate():
        model.generation_config.save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    torch.save(model.state_dict(), directory / weights_name)


def directory_size(directory: Path, exclude: tuple[str, ...] = ()) -> int:
    """Bytes of the files directly in `directory` (variant subfolders are not counted)."""
    return sum(p.stat().st_size for p in directory.iterdir() if p.is_file() and p.name not in exclude)


def count_parameters(model: Any) -> int:
    """Parameters of the model; an int8 model's packed Linear weights count as their element count."""
    total = sum(p.numel() for p in model.parameters())
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if callable(weight) and hasattr(module, "_packed_params"):
            packed = weight()
            total += packed.numel() + (module.bias().numel() if module.bias() is not None else 0)
    return int(total)


def measure_throughput(student: Any, examples: list[Example]) -> dict[str, float]:
    """Generated (or classified) tokens per second and mean latency of `student` on `examples`."""
    if not examples:
        return {"tokens_per_second": 0.0, "latency_ms": 0.0}
    started = time.perf_counter()
    predictions = student.predict(examples)
    seconds = max(time.perf_counter() - started, 1e-9)
    tokens = sum(p.completion_tokens for p in predictions)
    return {
        "tokens_per_second": round(tokens / seconds, 2),
        "examples_per_second": round(len(examples) / seconds, 2),
        "latency_ms": round(seconds * 1000 / len(examples), 3),
    }
