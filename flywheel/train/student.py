"""A trained student as a `flywheel.records.Predictor`: load an artifact directory, answer Examples.

Causal students generate greedily in length-sorted batches; confidence is the mean probability of the
generated tokens. Encoder students classify; confidence is the winning class probability. Extractor
students (flywheel.train.extractor) copy spans and pick choices. All answer
with an assistant message shaped like the teacher's (the label string for classification).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import orjson

from flywheel.records import Example, Prediction
from flywheel.train.formatting import classifier_text, parse_completion, prompt_budget, render_prompt

MANIFEST = "flywheel.json"
INT8_WEIGHTS = "int8_state_dict.pt"


def read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = Path(path) / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"{path}: not a flywheel model directory (no {MANIFEST})")
    return orjson.loads(manifest_path.read_bytes())


def load_student(path: str | Path, batch_size: int = 16, device: str = "cpu") -> Any:
    """Load a saved student (any variant: merged, pruned, int8) from its artifact directory.

    device: "cpu" (the serving default) or e.g. "cuda"; int8 variants are CPU-only.
    """
    from flywheel.train.hardware import configure_threads
    from flywheel.train.sft import quiet_libraries

    configure_threads()
    path = Path(path)
    manifest = read_manifest(path)
    from flywheel.train.kinds import get_kind

    with quiet_libraries():
        return get_kind(manifest["kind"]).load(path, manifest, batch_size, device)


def load_weights(path: Path, manifest: dict[str, Any], device: str = "cpu") -> tuple[Any, Any]:
    """The saved model (on `device`; int8-dynamic weights stay on the CPU they run on) and its
    tokenizer."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModelForCausalLM,
        AutoModelForSequenceClassification,
        AutoTokenizer,
    )

    auto = (
        AutoModelForSequenceClassification
        if manifest["kind"] == "encoder-classifier"
        else AutoModelForCausalLM
    )
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if manifest.get("weights") == "int8-dynamic":
        from flywheel.train.postprocess import quantize_int8

        model = quantize_int8(auto.from_config(AutoConfig.from_pretrained(str(path))))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about TypedStorage inside packed int8 params
            state = torch.load(path / INT8_WEIGHTS, weights_only=False)
        model.load_state_dict(state)
    else:
        model = auto.from_pretrained(str(path), dtype=torch.float32)
    if manifest.get("adapter"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(path / manifest["adapter"]))
    if manifest.get("weights") != "int8-dynamic":
        model = model.to(device)
    return model.eval(), tokenizer


class CausalStudent:
    """Greedy batched generation; text parsed back into an assistant message for the task."""

    def __init__(self, manifest: dict[str, Any], model: Any, tokenizer: Any, batch_size: int = 16) -> None:
        self.manifest = manifest
        self.name = manifest.get("model_id") or manifest["name"]
        self.task = manifest["task"]
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_new_tokens = int(manifest.get("max_new_tokens") or 64)
        self.max_prompt_tokens = prompt_budget(
            int(manifest.get("max_seq_length") or 256), self.max_new_tokens
        )
        # The tools as training rendered them; models saved before `tools_rendering` used the plain list.
        self.tools_rendering = manifest.get("tools_rendering") or (
            "plain" if manifest.get("include_tools") else None
        )
        tokenizer.padding_side = "left"
        tokenizer.truncation_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token

    def prompt_text(self, example: Example) -> str:
        return render_prompt(self.tokenizer, example, self.tools_rendering)

    def predict(self, examples: list[Example]) -> list[Prediction]:
        prompts = [self.prompt_text(e) for e in examples]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        results: list[Prediction | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for index, prediction in zip(chunk, self._generate([prompts[i] for i in chunk]), strict=True):
                results[index] = prediction
        return [r for r in results if r is not None]

    def _generate(self, prompts: list[str]) -> list[Prediction]:
        import torch

        started = time.perf_counter()
        encoded = self.tokenizer(
            prompts,
            return_tensors="pt",
            padding=True,
            truncation=True,
            max_length=self.max_prompt_tokens,
            add_special_tokens=False,
        ).to(self.model.device)
        with torch.inference_mode():
            output = self.model.generate(
                **encoded,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.pad_token_id,
            )
            log_probs = self.model.compute_transition_scores(
                output.sequences, output.scores, normalize_logits=True
            )
        latency_ms = (time.perf_counter() - started) * 1000 / len(prompts)
        generated = output.sequences[:, encoded["input_ids"].shape[1] :]
        prompt_lengths = encoded["attention_mask"].sum(dim=1).tolist()
        return [
            self._prediction(generated[row], log_probs[row], int(prompt_lengths[row]), latency_ms)
            for row in range(len(prompts))
        ]

    def _prediction(self, tokens: Any, log_probs: Any, prompt_tokens: int, latency_ms: float) -> Prediction:
        stop_ids = _stop_ids(self.model, self.tokenizer)
        length = len(tokens)
        for position, token in enumerate(tokens.tolist()):
            if token in stop_ids:
                length = position + 1
                break
        text = self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
        confidence = float(log_probs[:length].exp().mean()) if length else 0.0
        return Prediction(
            message=parse_completion(text, self.task),
            confidence=confidence,
            prompt_tokens=prompt_tokens,
            completion_tokens=length,
            latency_ms=latency_ms,
        )


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    stops = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    if tokenizer.eos_token_id is not None:
        stops.add(tokenizer.eos_token_id)
    if tokenizer.pad_token_id is not None:
        stops.add(tokenizer.pad_token_id)
    return stops


class EncoderStudent:
    """A sequence classifier that answers with the label string."""

    def __init__(self, manifest: dict[str, Any], model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.manifest = manifest
        self.name = manifest.get("model_id") or manifest["name"]
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(batch_size, 32)
        self.max_length = int(manifest.get("max_seq_length") or 128)
        if manifest.get("truncation_side"):
            tokenizer.truncation_side = manifest["truncation_side"]
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}

    def predict(self, examples: list[Example]) -> list[Prediction]:
        texts = [classifier_text(e) for e in examples]
        predictions: list[Prediction] = []
        for start in range(0, len(texts), self.batch_size):
            predictions.extend(self._classify(texts[start : start + self.batch_size]))
        return predictions

    def _classify(self, texts: list[str]) -> list[Prediction]:
        import torch

        started = time.perf_counter()
        encoded = self.tokenizer(
            texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length
        )
        with torch.inference_mode():
            probs = self.model(**encoded).logits.float().softmax(dim=-1)
        best, indices = probs.max(dim=-1)
        latency_ms = (time.perf_counter() - started) * 1000 / len(texts)
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        return [
            Prediction(
                message={"role": "assistant", "content": self.id2label[int(indices[row])]},
                confidence=float(best[row]),
                prompt_tokens=int(lengths[row]),
                completion_tokens=1,
                latency_ms=latency_ms,
            )
            for row in range(len(texts))
        ]
