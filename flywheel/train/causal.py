"""Causal students (scratch and Hub/local bases): build model + tokenizer, then fit with the configured
distillation mode (SFT on teacher answers, logit KD from a local teacher, or sparse top-k KD).

SFT trains on rows tokenized here, exactly as the served student reads its input: the prompt rendered
by `formatting.render_prompt` (tools through the chat template when it takes them), cut from the LEFT
to the prompt budget the student serves with (max_seq_length - max_new_tokens), so the oldest turns go
and the latest turns and the whole answer stay; labels cover the answer only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flywheel.records import Example
from flywheel.train.bases import load_base
from flywheel.train.config import TrainSettings
from flywheel.train.formatting import (
    messages_row,
    prompt_budget,
    prompt_messages,
    render_conversation,
    render_prompt,
    target_text,
    tool_rendering,
)
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
            tokenizer = train_tokenizer(
                tokenizer_corpus(train, task, bool(settings.options.include_tools)), size
            )
            vocab_size = None
        model = build_scratch_model(tokenizer, settings.size, settings.max_seq_length, seed, vocab_size)
        return model, tokenizer
    return load_pretrained_causal(settings, hardware)


def load_pretrained_causal(settings: TrainSettings, hardware: Hardware) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    role = f"student {settings.name!r}:"
    tokenizer = load_base(AutoTokenizer.from_pretrained, str(settings.base), role)
    ensure_chat_template(tokenizer)
    quantization = quantization_config(hardware, settings.options.qlora and settings.method == "lora")
    model = load_base(
        AutoModelForCausalLM.from_pretrained,
        str(settings.base),
        role,
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


def token_rows(
    tokenizer: Any, examples: list[Example], task: str, rendering: str | None, max_length: int, max_new: int
) -> tuple[list[dict[str, Any]], list[int]]:
    """SFT rows {"input_ids", "labels"} as the served student reads them (see the module docstring),
    and each example's untruncated length (prompt + answer)."""
    budget = prompt_budget(max_length, max_new)
    rows, lengths = [], []
    for example in examples:
        prompt = render_prompt(tokenizer, example, rendering)
        full = render_conversation(tokenizer, example, task, rendering)
        # The answer as the template closes a turn (end-of-turn/EOS included, so the student learns to
        # stop); a template that renders the prompt differently inside a finished chat gets answer+EOS.
        answer = (
            full[len(prompt) :]
            if full.startswith(prompt)
            else target_text(example, task) + tokenizer.eos_token
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
        lengths.append(len(prompt_ids) + len(answer_ids))
        prompt_ids = prompt_ids[-budget:]
        answer_ids = answer_ids[: max(1, max_length - len(prompt_ids))]
        rows.append({"input_ids": prompt_ids + answer_ids, "labels": [-100] * len(prompt_ids) + answer_ids})
    return rows, lengths


def length_report(
    model: Any, tokenizer: Any, lengths: list[int], max_length: int, rendering: str | None
) -> dict[str, Any]:
    """How many training conversations (prompt + answer) fit max_seq_length, and a warning when most do
    not (their oldest turns are cut). The length stays the configured one for causal students."""
    from flywheel.train.fitting import choose_max_length, model_length_limit

    limit = model_length_limit(tokenizer, model.config)
    choice = choose_max_length(lengths, limit, max_length, "left (the oldest turns; the answer is kept)")
    report: dict[str, Any] = {"max_length": choice.as_dict(), "tools_rendering": rendering}
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
    include_tools = bool(options.include_tools)
    # Logit and sparse distillation build their rows from plain messages: tools (if any) stay plain.
    rendering = tool_rendering(tokenizer, include_tools) if options.distill.mode == "sequence" else None
    rendering = rendering or ("plain" if include_tools else None)
    max_new = options.max_new_tokens or max_new_tokens_for(tokenizer, train, task, settings.max_seq_length)
    rows, lengths = token_rows(tokenizer, train, task, rendering, settings.max_seq_length, max_new)
    common = {"seed": seed, "progress": progress, "resume": resume}
    extra: dict[str, Any] = {
        "distillation": options.distill.mode,
        "tools_rendering": rendering,
        "fit": length_report(model, tokenizer, lengths, settings.max_seq_length, rendering),
    }
    loss = "completion"  # SFT rows carry labels on the answer only
    if options.distill.mode == "logits":
        from flywheel.train.distill import fit_logit_distill

        loss = choose_loss(options.loss, tokenizer)
        fit = fit_logit_distill(
            model, tokenizer, [messages_row(e, task, include_tools) for e in train], teacher[0],
            settings, hardware, run_dir, max_new_tokens=max_new, **common,
        )  # fmt: skip
    elif options.distill.mode == "sparse":
        from flywheel.train.distill import fit_sparse_kd, sparse_rows

        sparse, aligned = sparse_rows(
            tokenizer, train, task, teacher_logprobs or {}, settings.max_seq_length, 20, include_tools
        )
        extra["sparse_kd_aligned_examples"] = aligned
        fit = fit_sparse_kd(model, tokenizer, sparse, settings, hardware, run_dir, **common)
    else:
        fit = fit_sft(model, tokenizer, rows, settings, hardware, run_dir, loss=loss, **common)
    return CausalBuild(fit.model, tokenizer, fit, loss, max_new, extra)
