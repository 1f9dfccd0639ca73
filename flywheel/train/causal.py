"""Causal students (scratch and Hub/local bases): build model + tokenizer, then fit with the configured
distillation mode (SFT on teacher answers, logit KD from a local teacher, or sparse top-k KD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flywheel.records import Example
from flywheel.train.config import TrainSettings
from flywheel.train.formatting import messages_row, prompt_completion_row, prompt_messages, target_text
from flywheel.train.hardware import Hardware, quantization_config
from flywheel.train.scratch import build_scratch_model, default_vocab_size, train_tokenizer
from flywheel.train.sft import FitResult, fit_sft

# For bases that ship no chat template: plain role headers, the answer marked for assistant-only loss.
GENERIC_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)


@dataclass
class CausalBuild:
    model: Any
    tokenizer: Any
    fit: FitResult
    loss: str
    max_new_tokens: int
    extra: dict[str, Any]


def tokenizer_corpus(examples: list[Example], task: str, include_tools: bool) -> list[str]:
    texts = [m["content"] for e in examples for m in prompt_messages(e, include_tools)]
    return texts + [target_text(e, task) for e in examples]


def build_causal(
    settings: TrainSettings,
    train: list[Example],
    task: str,
    hardware: Hardware,
    seed: int,
    teacher: Any = None,
) -> tuple[Any, Any]:
    """The untrained student and its tokenizer (the teacher's tokenizer when distilling logits)."""
    if settings.kind == "scratch":
        if teacher is not None:
            tokenizer = teacher[1]
            ensure_chat_template(tokenizer)
            vocab_size = teacher[0].config.get_text_config().vocab_size
        else:
            size = settings.options.vocab_size or default_vocab_size(settings.size)
            tokenizer = train_tokenizer(tokenizer_corpus(train, task, settings.options.include_tools), size)
            vocab_size = None
        model = build_scratch_model(tokenizer, settings.size, settings.max_seq_length, seed, vocab_size)
        return model, tokenizer
    return load_pretrained_causal(settings, hardware)


def load_pretrained_causal(settings: TrainSettings, hardware: Hardware) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(settings.base)
    ensure_chat_template(tokenizer)
    quantization = quantization_config(hardware, settings.options.qlora and settings.method == "lora")
    model = AutoModelForCausalLM.from_pretrained(
        settings.base,
        dtype=torch.bfloat16 if hardware.bf16 else torch.float32,
        quantization_config=quantization,
        device_map={"": 0} if quantization is not None else None,  # 4-bit weights load straight to the GPU
    )
    if quantization is not None:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, settings.options.gradient_checkpointing)
    return model, tokenizer


def ensure_chat_template(tokenizer: Any) -> None:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = GENERIC_CHAT_TEMPLATE


def choose_loss(requested: str, tokenizer: Any) -> str:
    """assistant-only loss needs generation markers in the template; otherwise completion-only."""
    if requested != "auto":
        return requested
    return "assistant" if "{% generation %}" in (tokenizer.chat_template or "") else "completion"


def max_new_tokens_for(tokenizer: Any, train: list[Example], task: str, max_seq_length: int) -> int:
    """Room for the longest answer seen in training plus a margin (answers are short and regular)."""
    longest = max(len(tokenizer(target_text(e, task), add_special_tokens=False)["input_ids"]) for e in train)
    return max(4, min(max_seq_length // 2, int(longest * 1.25) + 4))


def length_report(
    settings: TrainSettings, model: Any, tokenizer: Any, train: list[Example], task: str
) -> dict[str, Any]:
    """How many training conversations (prompt + answer) fit max_seq_length; a warning when most do
    not (SFT cuts the end: the answer). The length stays the configured one for causal students."""
    from flywheel.train.fitting import choose_max_length, model_length_limit, token_lengths

    include_tools = settings.options.include_tools
    texts = [
        tokenizer.apply_chat_template(
            [*prompt_messages(e, include_tools), {"role": "assistant", "content": target_text(e, task)}],
            tokenize=False,
        )
        for e in train
    ]
    lengths = token_lengths(tokenizer, texts)
    limit = model_length_limit(tokenizer, model.config)
    choice = choose_max_length(lengths, limit, settings.max_seq_length, "right (the answer)")
    report: dict[str, Any] = {"max_length": choice.as_dict()}
    if choice.warning:
        report["warnings"] = [choice.warning]
    return report


def fit_causal(
    settings: TrainSettings,
    train: list[Example],
    task: str,
    hardware: Hardware,
    run_dir: Any,
    *,
    seed: int,
    progress: Any,
    resume: bool,
    teacher_logprobs: dict[str, Any] | None,
) -> CausalBuild:
    options = settings.options
    teacher = None
    if options.distill.mode == "logits":
        from flywheel.train.distill import load_teacher

        teacher = load_teacher(str(options.distill.teacher), hardware)
    model, tokenizer = build_causal(settings, train, task, hardware, seed, teacher)
    loss = choose_loss(options.loss, tokenizer)
    max_new = options.max_new_tokens or max_new_tokens_for(tokenizer, train, task, settings.max_seq_length)
    common = {"seed": seed, "progress": progress, "resume": resume}
    extra: dict[str, Any] = {
        "distillation": options.distill.mode,
        "fit": length_report(settings, model, tokenizer, train, task),
    }
    if options.distill.mode == "logits":
        from flywheel.train.distill import fit_logit_distill

        rows = [messages_row(e, task, options.include_tools) for e in train]
        fit = fit_logit_distill(
            model, tokenizer, rows, teacher[0], settings, hardware, run_dir, max_new_tokens=max_new, **common
        )
    elif options.distill.mode == "sparse":
        from flywheel.train.distill import fit_sparse_kd, sparse_rows

        rows, aligned = sparse_rows(
            tokenizer, train, task, teacher_logprobs or {}, settings.max_seq_length, 20, options.include_tools
        )
        extra["sparse_kd_aligned_examples"] = aligned
        fit = fit_sparse_kd(model, tokenizer, rows, settings, hardware, run_dir, **common)
    else:
        make_row = messages_row if loss == "assistant" else prompt_completion_row
        rows = [make_row(e, task, options.include_tools) for e in train]
        fit = fit_sft(model, tokenizer, rows, settings, hardware, run_dir, loss=loss, **common)
    return CausalBuild(fit.model, tokenizer, fit, loss, max_new, extra)
