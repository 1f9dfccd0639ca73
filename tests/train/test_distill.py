"""Logit distillation: sparse top-k KD from captured logprobs and GKD from a local teacher."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from flywheel.records import Example
from flywheel.train import load_student, train_candidate
from flywheel.train.distill import IGNORE, collate_sparse, sparse_kd_loss, sparse_rows, sparse_targets
from flywheel.train.scratch import train_tokenizer
from tests.train.conftest import tiny_student


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(["refund my order", "billing", "refund", "order_status"] * 20, 300)


def captured(tokenizer, text: str) -> dict:
    """What an OpenAI-compatible teacher returns with logprobs=True, top_logprobs=2."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    content = []
    for token_id in ids:
        token = tokenizer.decode([token_id])
        content.append(
            {
                "token": token,
                "logprob": math.log(0.75),
                "top_logprobs": [
                    {"token": token, "logprob": math.log(0.75)},
                    {"token": "billing", "logprob": -1.4},
                ],
            }
        )
    return {"content": content}


def test_sparse_targets_align_with_the_student_tokens_or_refuse(tokenizer) -> None:
    ids = tokenizer("refund", add_special_tokens=False)["input_ids"]
    aligned = sparse_targets(tokenizer, ids, captured(tokenizer, "refund"))
    assert aligned is not None
    top_ids, top_logprobs = aligned
    assert len(top_ids) == len(ids) and top_ids[0][0] == ids[0]
    assert top_logprobs[0][0] == pytest.approx(math.log(0.75))
    other = {"content": [{"token": "ref"}, {"token": "und!"}]}
    assert sparse_targets(tokenizer, ids, other) is None


def test_sparse_rows_and_loss(tokenizer) -> None:
    examples = [
        Example(
            "a", "w", [{"role": "user", "content": "money back"}], {"role": "assistant", "content": "refund"}
        ),
        Example(
            "b", "w", [{"role": "user", "content": "invoice"}], {"role": "assistant", "content": "billing"}
        ),
    ]
    rows, aligned = sparse_rows(
        tokenizer, examples, "chat", {"a": captured(tokenizer, "refund")}, 64, top_k=3
    )
    assert aligned == 1
    batch = collate_sparse(rows, tokenizer.pad_token_id)
    assert batch["topk_ids"].shape == (*batch["input_ids"].shape, 3)
    assert (batch["topk_ids"][1] == IGNORE).all()  # no logprobs for b: cross-entropy only
    logits = torch.randn(*batch["input_ids"].shape, len(tokenizer), requires_grad=True)
    ce_only = sparse_kd_loss(logits, batch["labels"], batch["topk_ids"], batch["topk_logprobs"], alpha=0.0)
    mixed = sparse_kd_loss(logits, batch["labels"], batch["topk_ids"], batch["topk_logprobs"], alpha=0.5)
    assert torch.isfinite(mixed) and not torch.equal(ce_only, mixed)
    mixed.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_kl_is_zero_when_the_student_matches_the_teacher() -> None:
    vocab = 5
    teacher = torch.tensor([math.log(0.6), math.log(0.4)])
    logits = torch.full((1, 2, vocab), -30.0)
    logits[0, 0, 1], logits[0, 0, 2] = math.log(0.6), math.log(0.4)
    labels = torch.tensor([[IGNORE, 1]])
    topk_ids = torch.tensor([[[IGNORE, IGNORE], [1, 2]]])
    topk_logprobs = torch.stack([torch.zeros(2), teacher]).unsqueeze(0)
    kl_only = sparse_kd_loss(logits, labels, topk_ids, topk_logprobs, alpha=1.0)
    assert kl_only.item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.slow
def test_gkd_distils_a_local_teacher_into_a_smaller_student(tmp_path: Path, routing, demo_workloads) -> None:
    train, val, evaluation = routing
    workload = demo_workloads["support-routing"]
    common = {"out_dir": tmp_path, "snapshot_id": None, "warehouse": None}
    teacher = train_candidate(
        tiny_student("teacher", size="small", options={"val_examples": 0}), workload, train[:24], [], **common
    )
    student = train_candidate(
        tiny_student("student", options={"distill": {"mode": "logits", "teacher": str(teacher.path)}}),
        workload,
        train[:24],
        val,
        **common,
    )
    assert student.metrics["val_examples"] == 4
    manifest_teacher = load_student(student.path).manifest["teacher"]
    assert manifest_teacher == str(teacher.path)
    loaded = load_student(student.path)
    assert loaded.tokenizer.get_vocab() == load_student(teacher.path).tokenizer.get_vocab()
    assert len(loaded.predict(evaluation[:2])) == 2


@pytest.mark.slow
def test_sparse_mode_trains_from_captured_logprobs(tmp_path: Path, routing, demo_workloads) -> None:
    train, val, _ = routing
    workload = demo_workloads["support-routing"]
    logprobs = {e.example_id: {"content": [{"token": e.label, "logprob": -0.1}]} for e in train[:24]}
    trained = train_candidate(
        tiny_student(options={"distill": {"mode": "sparse", "alpha": 0.5}}),
        workload,
        train[:24],
        val,
        out_dir=tmp_path,
        snapshot_id=None,
        warehouse=None,
        teacher_logprobs=logprobs,
    )
    manifest = load_student(trained.path).manifest
    assert manifest["distillation"] == "sparse" and manifest["sparse_kd_aligned_examples"] >= 0
    assert len(trained.loss_curve) == 4
