"""Slot-level scores and the noisy gold teacher."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from flywheel.recipes.scoring import slot_pairs, slot_scores
from flywheel.testing.noisy_teacher import NoisyGoldTeacher


def answer(intent: str, **slots: str | list[str]) -> dict:
    return {"intent": intent, "slots": slots}


def test_slot_pairs_count_each_value_of_a_repeated_slot() -> None:
    pairs = slot_pairs(answer("PlayMusic", genre=["jazz", "soul"], artist=" Nina  Simone "))
    assert pairs == Counter({("genre", "jazz"): 1, ("genre", "soul"): 1, ("artist", "Nina Simone"): 1})
    assert slot_pairs(None) == Counter() and slot_pairs({"slots": "x"}) == Counter()


def test_slot_scores_are_micro_over_pairs() -> None:
    refs = [answer("A", city="Oslo", day="today"), answer("B", genre=["jazz", "soul"])]
    preds = [answer("A", city="Oslo", day="tomorrow"), answer("C", genre=["jazz"])]
    scores = slot_scores(preds, refs)
    assert scores["pairs"] == {"tp": 2, "fp": 1, "fn": 2}
    assert scores["slot_precision"] == pytest.approx(2 / 3) and scores["slot_recall"] == pytest.approx(2 / 4)
    assert scores["slot_f1"] == pytest.approx(4 / 7)
    assert scores["intent_accuracy"] == 0.5


def test_an_unparseable_prediction_misses_every_gold_pair() -> None:
    scores = slot_scores([None], [answer("A", city="Oslo")])
    assert scores["pairs"] == {"tp": 0, "fp": 0, "fn": 1} and scores["intent_accuracy"] == 0
    assert slot_scores([answer("A")], [answer("A")])["slot_f1"] == 1.0  # nothing to find, nothing found


def request(text: str, enum: list[str] | None = None) -> dict:
    body: dict = {"messages": [{"role": "user", "content": text}]}
    if enum:
        schema = {"type": "object", "properties": {"label": {"enum": enum}}}
        body["response_format"] = {"type": "json_schema", "json_schema": {"schema": schema}}
    return body


def test_noisy_teacher_errs_at_its_rate_independently_per_call() -> None:
    labels = [f"l{i}" for i in range(10)]
    gold = {f"text {i}": labels[i % 10] for i in range(2000)}
    teacher = NoisyGoldTeacher(gold, labels, error_rate=0.2, seed=1)
    answers = {text: [teacher(request(text)) for _ in range(3)] for text in gold}
    wrong = sum(a != gold[t] for t, votes in answers.items() for a in votes)
    assert 0.17 < wrong / 6000 < 0.23 and teacher.stats["wrong"] == wrong
    assert all(a in labels for votes in answers.values() for a in votes)
    # independent draws: the three samples of one text are not all equal when one of them is wrong
    assert any(len(set(votes)) > 1 for votes in answers.values())
    again = NoisyGoldTeacher(gold, labels, error_rate=0.2, seed=1)
    assert [again(request("text 5")) for _ in range(3)] == answers["text 5"]


def test_noisy_teacher_answers_in_the_requested_format() -> None:
    teacher = NoisyGoldTeacher({"hi": "a"}, ["a", "b"], error_rate=0.0)
    assert json.loads(teacher(request("hi", enum=["a", "b"]))) == {"label": "a"}
    assert teacher(request("unknown text")) in ("a", "b") and teacher.stats["unknown_text"] == 1
    with pytest.raises(ValueError):
        NoisyGoldTeacher({}, ["a"], 0.1)
