"""Logit distillation: match the teacher's next-token distribution, not only its chosen answer.

- `fit_logit_distill`: a local HF teacher sharing the student's vocabulary. TRL's GKDTrainer with
  lmbda=0 runs supervised KD on the teacher's answers; DistillationTrainer runs on-policy on student
  samples. beta=0 (forward KL) by default: reverse KL fails to start from a random student.
- `fit_sparse_kd`: API teachers only return top-k logprobs per generated token. Where the student's
  tokenization of the answer reproduces the teacher's tokens, the loss adds KL to the renormalised
  top-k distribution; elsewhere it is plain cross-entropy on the answer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flywheel.records import Example
from flywheel.train.config import TrainSettings
from flywheel.train.formatting import prompt_messages, target_text
from flywheel.train.hardware import Hardware
from flywheel.train.sft import (
    FitResult,
    Progress,
    StepReporter,
    peft_config_for,
    quiet_trainer,
    run_trainer,
    training_arguments,
)

IGNORE = -100


def load_teacher(path: str, hardware: Hardware) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from flywheel.train.bases import load_base

    dtype = torch.bfloat16 if hardware.bf16 else torch.float32
    where = {"role": "distillation teacher:", "setting_key": "options.distill.teacher"}
    teacher = load_base(AutoModelForCausalLM.from_pretrained, path, dtype=dtype, **where)
    return teacher.eval(), load_base(AutoTokenizer.from_pretrained, path, **where)


def fit_logit_distill(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    teacher: Any,
    settings: TrainSettings,
    hardware: Hardware,
    run_dir: Path,
    *,
    max_new_tokens: int,
    seed: int = 0,
    progress: Progress | None = None,
    resume: bool = True,
) -> FitResult:
    """KD from a local teacher on `messages` rows (the last message is the teacher's answer)."""
    from datasets import Dataset

    common = training_arguments(settings, hardware, run_dir, seed)
    build = _gkd_trainer if settings.options.distill.trainer == "gkd" else _onpolicy_trainer
    trainer = build(
        model=model,
        teacher=teacher,
        tokenizer=tokenizer,
        rows=Dataset.from_list(rows),
        settings=settings,
        common=common,
        max_new_tokens=max_new_tokens,
        callbacks=[StepReporter(progress)],
    )
    quiet_trainer(trainer)
    return run_trainer(trainer, run_dir, resume)


def _gkd_trainer(*, model: Any, teacher: Any, tokenizer: Any, rows: Any, settings: TrainSettings,
                 common: dict[str, Any], max_new_tokens: int, callbacks: list[Any]) -> Any:  # fmt: skip
    """GKD: lmbda=0 is supervised KD on the teacher's answers (no sampling, cheap on CPU)."""
    from trl.experimental.gkd import GKDConfig, GKDTrainer

    options = settings.options.distill
    args = GKDConfig(
        **common,
        max_length=settings.max_seq_length,
        lmbda=options.lmbda,
        beta=options.beta,
        temperature=options.temperature,
        max_new_tokens=max_new_tokens,
    )
    return GKDTrainer(
        model=model,
        teacher_model=teacher,
        args=args,
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=peft_config_for(settings, "CAUSAL_LM", model),
        callbacks=callbacks,
    )


def _onpolicy_trainer(*, model: Any, teacher: Any, tokenizer: Any, rows: Any, settings: TrainSettings,
                      common: dict[str, Any], max_new_tokens: int, callbacks: list[Any]) -> Any:  # fmt: skip
    """TRL DistillationTrainer: the student samples completions and matches the teacher on them."""
    from trl import DistillationConfig, DistillationTrainer

    options = settings.options.distill
    tokenizer.padding_side = "left"
    args = DistillationConfig(
        **common, beta=options.beta, temperature=options.temperature, max_completion_length=max_new_tokens
    )
    prompts = rows.map(lambda row: {"prompt": row["messages"][:-1]}, remove_columns=rows.column_names)
    return DistillationTrainer(
        model=model,
        teacher_model=teacher,
        args=args,
        train_dataset=prompts,
        processing_class=tokenizer,
        peft_config=peft_config_for(settings, "CAUSAL_LM", model),
        callbacks=callbacks,
    )


def sparse_targets(
    tokenizer: Any, completion_ids: list[int], logprobs: Any
) -> tuple[list[list[int]], list[list[float]]] | None:
    """Per completion token, the teacher's top-k alternatives as student ids and logprobs.

    None when the captured tokens do not line up with the student's tokens (another tokenizer).
    """
    content = logprobs.get("content") if isinstance(logprobs, dict) else logprobs
    if not isinstance(content, list) or not content:
        return None
    teacher_tokens = [str(item.get("token", "")) for item in content]
    student_tokens = [tokenizer.decode([token_id]) for token_id in completion_ids]
    if student_tokens[: len(teacher_tokens)] != teacher_tokens:
        return None
    ids: list[list[int]] = []
    values: list[list[float]] = []
    for item in content:
        alternatives = item.get("top_logprobs") or [
            {"token": item.get("token"), "logprob": item.get("logprob")}
        ]
        row_ids, row_values = [], []
        for alternative in alternatives:
            encoded = tokenizer.encode(str(alternative.get("token", "")), add_special_tokens=False)
            if len(encoded) == 1 and encoded[0] not in row_ids and alternative.get("logprob") is not None:
                row_ids.append(encoded[0])
                row_values.append(float(alternative["logprob"]))
        ids.append(row_ids)
        values.append(row_values)
    return ids, values


def sparse_rows(
    tokenizer: Any,
    examples: list[Example],
    task: str,
    logprobs: dict[str, Any],
    max_length: int,
    top_k: int,
    include_tools: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Tokenized rows with labels on the answer and top-k teacher targets where they align."""
    rows, aligned = [], 0
    for example in examples:
        prompt = tokenizer.apply_chat_template(
            prompt_messages(example, include_tools), tokenize=False, add_generation_prompt=True
        )
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(target_text(example, task), add_special_tokens=False)["input_ids"]
        completion_ids = [*completion_ids, tokenizer.eos_token_id]
        targets = None
        captured = logprobs.get(example.example_id) or logprobs.get(example.interaction_id or "")
        if captured is not None:
            targets = sparse_targets(tokenizer, completion_ids[:-1], captured)
        aligned += targets is not None
        topk_ids = [[IGNORE] * top_k for _ in prompt_ids]
        topk_values = [[0.0] * top_k for _ in prompt_ids]
        for position in range(len(completion_ids)):
            row_ids, row_values = (
                (targets[0][position], targets[1][position])
                if targets and position < len(targets[0])
                else ([], [])
            )
            row_ids, row_values = row_ids[:top_k], row_values[:top_k]
            pad = top_k - len(row_ids)
            topk_ids.append(row_ids + [IGNORE] * pad)
            topk_values.append(row_values + [0.0] * pad)
        input_ids = (prompt_ids + completion_ids)[-max_length:]
        labels = ([IGNORE] * len(prompt_ids) + completion_ids)[-max_length:]
        rows.append(
            {
                "input_ids": input_ids,
                "labels": labels,
                "topk_ids": topk_ids[-max_length:],
                "topk_logprobs": topk_values[-max_length:],
            }
        )
    return rows, aligned


def collate_sparse(batch: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    import torch

    width = max(len(row["input_ids"]) for row in batch)
    top_k = len(batch[0]["topk_ids"][0])

    def padded(key: str, value: Any, inner: int | None = None) -> Any:
        filler = [value] * inner if inner else value
        return torch.tensor([row[key] + [filler] * (width - len(row[key])) for row in batch])

    input_ids = padded("input_ids", pad_id)
    attention = torch.tensor(
        [[1] * len(row["input_ids"]) + [0] * (width - len(row["input_ids"])) for row in batch]
    )
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "labels": padded("labels", IGNORE),
        "topk_ids": padded("topk_ids", IGNORE, top_k),
        "topk_logprobs": padded("topk_logprobs", 0.0, top_k).float(),
    }


def sparse_kd_loss(logits: Any, labels: Any, topk_ids: Any, topk_logprobs: Any, alpha: float) -> Any:
    """(1 - alpha) * CE(answer) + alpha * KL(teacher top-k || student) over positions with teacher data."""
    import torch
    import torch.nn.functional as F

    logits = logits[:, :-1].float()
    labels, topk_ids, topk_logprobs = labels[:, 1:], topk_ids[:, 1:], topk_logprobs[:, 1:]
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=IGNORE)
    valid = topk_ids != IGNORE
    positions = valid.any(dim=-1)
    if alpha == 0 or not bool(positions.any()):
        return ce
    student = F.log_softmax(logits, dim=-1).gather(-1, topk_ids.clamp(min=0))
    teacher = topk_logprobs.masked_fill(~valid, float("-inf")).log_softmax(dim=-1)
    teacher_p = teacher.exp().masked_fill(~valid, 0.0)
    kl = (teacher_p * (teacher.masked_fill(~valid, 0.0) - student)).sum(dim=-1)
    kl = kl[positions].mean()
    return (1 - alpha) * ce + alpha * kl + torch.zeros((), device=ce.device)


def fit_sparse_kd(
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    settings: TrainSettings,
    hardware: Hardware,
    run_dir: Path,
    *,
    seed: int = 0,
    progress: Progress | None = None,
    resume: bool = True,
) -> FitResult:
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments

    alpha = settings.options.distill.alpha

    class SparseKDTrainer(Trainer):
        def compute_loss(
            self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, **_: Any
        ) -> Any:
            topk_ids, topk_logprobs = inputs.pop("topk_ids"), inputs.pop("topk_logprobs")
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = sparse_kd_loss(outputs.logits, labels, topk_ids, topk_logprobs, alpha)
            return (loss, outputs) if return_outputs else loss

    peft_config = peft_config_for(settings, "CAUSAL_LM", model)
    if peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    args = TrainingArguments(
        **training_arguments(settings, hardware, run_dir, seed), remove_unused_columns=False
    )
    trainer = SparseKDTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        data_collator=lambda batch: collate_sparse(batch, tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[StepReporter(progress)],
    )
    quiet_trainer(trainer)
    return run_trainer(trainer, run_dir, resume)
