"""The schema-tool network: one pretrained encoder (MiniLM by default) read as a cross-encoder with
three small heads:
- chooser: one score per (function text, conversation) pair, the "reply in text" option included;
  a softmax over the offered options picks the call;
- span: start/end logits over the conversation tokens for a (parameter question, conversation) pair
  (extractive QA);
- mode: whether that parameter is absent, a copied span, true or false;
- bi: the bi-encoder chooser's head (chooser.py): the conversation and each function encoded alone.
Sharing the encoder keeps the student one 22M-parameter model on disk and in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.train.schematool.data import MODES

HEADS = "schema_tool_heads.safetensors"
HEAD_NAMES = ("chooser", "span", "mode", "bi")


def build_model(encoder: Any) -> Any:
    from torch import nn

    from flywheel.train.schematool.chooser import build_bi_head

    class SchemaToolModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            hidden = encoder.config.hidden_size
            self.encoder = encoder
            self.config = encoder.config
            self.dropout = nn.Dropout(0.1)
            self.chooser = nn.Linear(hidden, 1)
            self.span = nn.Linear(hidden, 2)
            self.mode = nn.Linear(hidden, MODES)
            self.bi = build_bi_head(hidden)

        def _states(self, batch: dict[str, Any]) -> tuple[Any, Any]:
            states = self.encoder(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                token_type_ids=batch.get("token_type_ids"),
            ).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return states, self.dropout(pooled)

        def pool(self, batch: dict[str, Any]) -> Any:
            """The mean-pooled encoding of single texts (the bi-encoder chooser's vectors)."""
            return self._states(batch)[1]

        def choose(self, batch: dict[str, Any]) -> Any:
            """One score per row (a function or the text option against the conversation)."""
            return self.chooser(self._states(batch)[1]).squeeze(-1)

        def fill(self, batch: dict[str, Any]) -> tuple[Any, Any, Any]:
            """(start logits, end logits, mode logits); positions outside the context are -inf."""
            states, pooled = self._states(batch)
            logits = self.span(self.dropout(states))
            outside = batch["context_mask"] == 0
            start = logits[..., 0].masked_fill(outside, float("-inf"))
            end = logits[..., 1].masked_fill(outside, float("-inf"))
            return start, end, self.mode(pooled)

        def save_pretrained(self, directory: str) -> None:
            from safetensors.torch import save_file

            self.encoder.save_pretrained(directory)
            heads = {f"{name}.{k}": v for name in HEAD_NAMES
                     for k, v in getattr(self, name).state_dict().items()}  # fmt: skip
            save_file({k: v.contiguous() for k, v in heads.items()}, str(Path(directory) / HEADS))

        def load_heads(self, directory: Path) -> None:
            from safetensors.torch import load_file

            heads = load_file(str(Path(directory) / HEADS))
            for name in HEAD_NAMES:
                prefix = f"{name}."
                part = {k[len(prefix) :]: v for k, v in heads.items() if k.startswith(prefix)}
                if part or name != "bi":  # bundles saved before the bi-encoder chooser have no bi head
                    getattr(self, name).load_state_dict(part)

    return SchemaToolModel()


def load_base(base: str) -> tuple[Any, Any]:
    """A fresh model on the pretrained encoder at `base` (a local path) and its tokenizer."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.truncation_side = "left"  # the newest turns matter most: cut the oldest
    return build_model(AutoModel.from_pretrained(base)), tokenizer


def load_saved(path: Path) -> tuple[Any, Any]:
    model, tokenizer = load_base(str(path))
    model.load_heads(path)
    return model.eval(), tokenizer


def encode_pairs(tokenizer: Any, firsts: list[str], contexts: list[str], max_length: int) -> dict[str, Any]:
    """Pairs (question or function text, conversation) as a padded batch; the conversation is cut
    from the left to fit, and `context_mask` marks its tokens (the only ones a span may cover)."""
    import torch

    encoded = tokenizer(
        firsts, contexts, truncation="only_second", max_length=max_length, padding=True,
        return_offsets_mapping=True, return_tensors="pt",
    )  # fmt: skip
    rows = [[1 if s == 1 else 0 for s in encoded.sequence_ids(i)] for i in range(len(firsts))]
    encoded["context_mask"] = torch.tensor(rows)
    return encoded


def span_positions(offsets: list, context_mask: list[int], start: int, end: int) -> tuple[int, int] | None:
    """Token positions covering characters [start, end) of the context, or None when cut off."""
    tokens = [i for i, ((s, e), m) in enumerate(zip(offsets, context_mask, strict=True))
              if m and s < e and s < end and e > start]  # fmt: skip
    if not tokens:
        return None
    first, last = tokens[0], tokens[-1]
    if offsets[first][0] > start + 1 or offsets[last][1] < end - 1:  # partly truncated away
        return None
    return first, last
