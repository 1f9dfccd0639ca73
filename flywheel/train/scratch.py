"""The offline default student: a tiny Llama built from a config with a tokenizer trained on the data.

Nothing is downloaded. The byte-level BPE tokenizer learns the workload's own text (so labels, SKUs and
tool names become few tokens), and its chat template marks the assistant turn with
`{% generation %}` so TRL can train on the answer only. `<|end|>` closes every turn and is the EOS
token, inside the generation markers, so the model learns to stop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]
PAD, EOS = "<|pad|>", "<|end|>"
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}"
    "<|assistant|>{% generation %}{{ message['content'] }}<|end|>{% endgeneration %}"
    "{% elif message['role'] in ['system', 'user', 'tool'] %}"
    "<|{{ message['role'] }}|>{{ message['content'] }}<|end|>"
    "{% else %}<|user|>{{ message['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
# Model shapes. tiny: ~3-4M parameters, trains at ~2k tokens/s on 2 CPU threads.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {
        "hidden_size": 256,
        "num_hidden_layers": 4,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "intermediate_size": 768,
        "vocab_size": 2048,
    },
    "small": {
        "hidden_size": 384,
        "num_hidden_layers": 6,
        "num_attention_heads": 6,
        "num_key_value_heads": 6,
        "intermediate_size": 1152,
        "vocab_size": 4096,
    },
}


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Any:
    """A byte-level BPE tokenizer (any byte encodes; no <unk>) with the chat template set."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token=EOS)
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_scratch_model(
    tokenizer: Any, size: str, max_positions: int, seed: int = 0, vocab_size: int | None = None
) -> Any:
    """A randomly initialised Llama of the given size over `tokenizer`'s vocabulary (or `vocab_size`,
    to share a teacher's padded vocabulary for logit distillation)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    if size not in SIZES:
        raise ValueError(f"unknown scratch size {size!r} (known: {', '.join(SIZES)})")
    shape = {k: v for k, v in SIZES[size].items() if k != "vocab_size"}
    config = LlamaConfig(
        vocab_size=vocab_size or len(tokenizer),
        max_position_embeddings=max(max_positions, 64),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=False,
        **shape,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def default_vocab_size(size: str) -> int:
    return SIZES[size]["vocab_size"]
