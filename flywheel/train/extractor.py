"""Encoder-extractor students: a pretrained encoder (default the MiniLM shipped on PyPI) with a token
tagger that copies values out of the user's text and a classifier per "choice" path (intent, function
name, enum, canned reply). See `extractor_spec` for what is learned and how JSON is rebuilt.

For extraction and tool-call workloads whose answers copy what the user wrote, this is a small,
fast student that cannot hallucinate a value and whose output is valid JSON by construction; what it
cannot produce (a value not in the text, a reply never seen twice, parallel calls) gets confidence 0,
so `flywheel serve` routes those requests to the teacher.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from flywheel.records import Example, Prediction
from flywheel.train.encoder import prepare_encoder, resolve_encoder_base
from flywheel.train.extractor_spec import (
    TEXT_REPLY,
    ExtractorSpec,
    Span,
    answer_object,
    canonical,
    coerce,
    leaves,
    locate,
    path_key,
    rebuild,
)
from flywheel.train.formatting import classifier_text, compact_json
from flywheel.train.hardware import Hardware
from flywheel.train.sft import (
    FitResult,
    Progress,
    StepReporter,
    quiet_trainer,
    run_trainer,
    training_arguments,
)

HEADS = "extractor_heads.safetensors"
IGNORE = -100


def build_model(encoder: Any, spec: ExtractorSpec) -> Any:
    from torch import nn

    class ExtractorModel(nn.Module):
        """Encoder + BIO tagger over span paths + one softmax group per choice path."""

        main_input_name = "input_ids"

        def __init__(self) -> None:
            super().__init__()
            hidden = encoder.config.hidden_size
            self.encoder = encoder
            self.config = encoder.config
            self.spec = spec
            self.dropout = nn.Dropout(0.1)
            self.tagger = nn.Linear(hidden, len(spec.tag_names()))
            sizes = [1 + len(g["values"]) for g in spec.groups]
            self.group_slices = [(sum(sizes[:i]), sum(sizes[: i + 1])) for i in range(len(sizes))]
            self.chooser = nn.Linear(hidden, max(sum(sizes), 1))

        def forward(
            self,
            input_ids: Any,
            attention_mask: Any,
            tag_labels: Any = None,
            group_labels: Any = None,
            **_: Any,
        ) -> dict[str, Any]:
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            tag_logits = self.tagger(self.dropout(states))
            group_logits = self.chooser(self.dropout(pooled))
            out = {"tag_logits": tag_logits, "group_logits": group_logits}
            if tag_labels is not None:
                loss = nn.functional.cross_entropy(
                    tag_logits.reshape(-1, tag_logits.shape[-1]), tag_labels.reshape(-1), ignore_index=IGNORE
                )
                for g, (a, b) in enumerate(self.group_slices):
                    loss = loss + nn.functional.cross_entropy(group_logits[:, a:b], group_labels[:, g])
                out["loss"] = loss
            return out

        def save_pretrained(self, directory: str) -> None:
            from safetensors.torch import save_file

            self.encoder.save_pretrained(directory)
            heads = {f"tagger.{k}": v for k, v in self.tagger.state_dict().items()}
            heads |= {f"chooser.{k}": v for k, v in self.chooser.state_dict().items()}
            save_file({k: v.contiguous() for k, v in heads.items()}, str(Path(directory) / HEADS))

        def load_heads(self, directory: Path) -> None:
            from safetensors.torch import load_file

            heads = load_file(str(directory / HEADS))
            self.tagger.load_state_dict({k[7:]: v for k, v in heads.items() if k.startswith("tagger.")})
            self.chooser.load_state_dict({k[8:]: v for k, v in heads.items() if k.startswith("chooser.")})

    return ExtractorModel()


def load_extractor(settings: Any, spec: ExtractorSpec) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    base = resolve_encoder_base(settings.base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    return build_model(AutoModel.from_pretrained(base), spec), tokenizer


def encode_example(tokenizer: Any, spec: ExtractorSpec, example: Example, max_length: int) -> dict | None:
    """Token ids with a BIO tag per token and the choice index per group; None when unusable."""
    obj = answer_object(example, spec.task)
    if obj is None:
        return None
    text = classifier_text(example)
    span_paths = {tuple(p): i for i, p in enumerate(spec.span_paths)}
    items = leaves(obj)
    spans, _ = locate(text, [leaf for leaf in items if leaf.path in span_paths])
    encoded = tokenizer(text, truncation=True, max_length=max_length, return_offsets_mapping=True)
    tags = token_tags(encoded["offset_mapping"], spans, span_paths)
    chosen = {leaf.path: canonical(leaf.value) for leaf in items if leaf.path not in span_paths}
    groups = []
    for group in spec.groups:
        value = chosen.get(tuple(group["path"]))
        groups.append(group["values"].index(value) + 1 if value in group["values"] else 0)
    ids = encoded["input_ids"]
    return {"input_ids": ids, "attention_mask": encoded["attention_mask"], "tag_labels": tags,
            "group_labels": groups, "length": len(ids)}  # fmt: skip


def token_tags(offsets: list[tuple[int, int]], spans: list[Span], span_paths: dict) -> list[int]:
    """B/I tags for the tokens each span overlaps; special tokens are ignored by the loss."""
    tags = [IGNORE if start == end else 0 for start, end in offsets]
    for span in spans:
        index = span_paths[span.path]
        inside = [i for i, (s, e) in enumerate(offsets) if s < e and s < span.end and e > span.start]
        for n, i in enumerate(inside):
            tags[i] = 1 + 2 * index + (1 if n else 0)
    return tags


def collate(tokenizer: Any) -> Any:
    import torch

    def pad(batch: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(row["input_ids"]) for row in batch)

        def padded(key: str, fill: int) -> Any:
            return torch.tensor([row[key] + [fill] * (width - len(row[key])) for row in batch])

        return {
            "input_ids": padded("input_ids", tokenizer.pad_token_id or 0),
            "attention_mask": padded("attention_mask", 0),
            "tag_labels": padded("tag_labels", IGNORE),
            "group_labels": torch.tensor([row["group_labels"] for row in batch], dtype=torch.long),
        }

    return pad


def fit_extractor(
    model: Any,
    tokenizer: Any,
    train: list[Example],
    settings: Any,
    hardware: Hardware,
    run_dir: Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    resume: bool = True,
) -> tuple[FitResult, int]:
    """Train tagger and choosers together; returns the fit and how many answers were unusable."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    rows = [encode_example(tokenizer, model.spec, e, settings.max_seq_length) for e in train]
    kept = [row for row in rows if row is not None]
    if not kept:
        raise ValueError("no training answer can be represented as spans and choices")
    dataset = Dataset.from_list(kept)
    prepare_encoder(model.encoder, settings)
    args = TrainingArguments(
        **training_arguments(
            settings, hardware, run_dir, seed,
            train_sampling_strategy="group_by_length", length_column_name="length",
            remove_unused_columns=False,
        )
    )  # fmt: skip
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collate(tokenizer),
        callbacks=[StepReporter(progress)],
    )
    quiet_trainer(trainer)
    return run_trainer(trainer, run_dir, resume), len(rows) - len(kept)


class ExtractorStudent:
    """Answers with the teacher's JSON (extraction) or tool call, rebuilt from spans and choices."""

    def __init__(self, manifest: dict[str, Any], model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.manifest = manifest
        self.name = manifest.get("model_id") or manifest["name"]
        self.model = model
        self.tokenizer = tokenizer
        self.spec = model.spec
        self.batch_size = max(batch_size, 32)
        self.max_length = int(manifest.get("max_seq_length") or 256)
        self.tags = self.spec.tag_names()

    def predict(self, examples: list[Example]) -> list[Prediction]:
        texts = [classifier_text(e) for e in examples]
        predictions: list[Prediction] = []
        for start in range(0, len(texts), self.batch_size):
            predictions.extend(self._extract(texts[start : start + self.batch_size]))
        return predictions

    def _extract(self, texts: list[str]) -> list[Prediction]:
        import torch

        started = time.perf_counter()
        encoded = self.tokenizer(
            texts, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length,
            return_offsets_mapping=True,
        )  # fmt: skip
        offsets = encoded.pop("offset_mapping").tolist()
        with torch.inference_mode():
            out = self.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"])
        tag_probs = out["tag_logits"].float().softmax(-1)
        latency_ms = (time.perf_counter() - started) * 1000 / len(texts)
        lengths = encoded["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, text in enumerate(texts):
            facts, confidence = self._facts(text, tag_probs[row], offsets[row], out["group_logits"][row])
            message, representable = self._message(rebuild(self.spec, facts))
            results.append(
                Prediction(
                    message=message,
                    confidence=confidence if representable else 0.0,
                    prompt_tokens=int(lengths[row]),
                    completion_tokens=len(facts),
                    latency_ms=latency_ms,
                )
            )
        return results

    def _facts(self, text: str, tag_probs: Any, offsets: list, group_logits: Any) -> tuple[list, float]:
        facts, confidences = decode_spans(self.spec, self.tags, text, tag_probs, offsets)
        for group, (a, b) in zip(self.spec.groups, self.model.group_slices, strict=True):
            probs = group_logits[a:b].float().softmax(-1)
            best = int(probs.argmax())
            confidences.append(float(probs[best]))
            if best > 0:
                facts.append((tuple(group["path"]), orjson.loads(group["values"][best - 1]), -1))
        return facts, min(confidences, default=1.0)

    def _message(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """The assistant message, and whether the student could produce a whole answer."""
        if self.spec.task == "extraction":
            return {"role": "assistant", "content": compact_json(obj)}, True
        name = obj.get("name")
        if not name:
            text = obj.get(TEXT_REPLY[0])
            return {"role": "assistant", "content": text or ""}, bool(text)
        allowed = set(self.spec.args_by_name.get(str(name), []))
        arguments = {k: v for k, v in (obj.get("arguments") or {}).items() if k in allowed}
        call = {
            "id": "call_0",
            "type": "function",
            "function": {"name": name, "arguments": compact_json(arguments)},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, True


def decode_spans(
    spec: ExtractorSpec, tags: list[str], text: str, tag_probs: Any, offsets: list
) -> tuple[list[tuple[tuple[str, ...], Any, int]], list[float]]:
    """BIO runs -> (path, typed value, position) facts and each run's mean tag probability."""
    best_probs, best = tag_probs.max(-1)
    facts, confidences, run = [], [], None
    for i, (start, end) in enumerate([*offsets, (0, 0)]):
        tag = tags[int(best[i])] if start < end else "O"
        path = tag[2:]
        if run is not None and (tag == "O" or tag.startswith("B-") or path != run[0]):
            facts_from_run(spec, text, run, facts, confidences)
            run = None
        if tag != "O" and start < end:
            if run is None:
                run = [path, start, end, []]
            run[2] = end
            run[3].append(float(best_probs[i]))
    return facts, confidences


def facts_from_run(spec: ExtractorSpec, text: str, run: list, facts: list, confidences: list) -> None:
    key, start, end, probs = run
    path = next(tuple(p) for p in spec.span_paths if path_key(tuple(p)) == key)
    value = coerce(text[start:end], spec.types.get(key, "str"))
    if value is not None:
        facts.append((path, value, start))
        confidences.append(sum(probs) / len(probs))


def load_extractor_weights(path: Path, manifest: dict[str, Any]) -> tuple[Any, Any]:
    from transformers import AutoModel, AutoTokenizer

    spec = ExtractorSpec.from_dict(manifest["extractor"])
    model = build_model(AutoModel.from_pretrained(str(path)), spec)
    model.load_heads(Path(path))
    return model.eval(), AutoTokenizer.from_pretrained(str(path))
