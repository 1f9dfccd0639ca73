"""Per-tool metrics on a handcrafted eval set whose values are counted by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from flywheel.evaluate.tool_metrics import nested, tool_metrics


def calls(*items: tuple[str, dict]) -> str:
    return json.dumps([{"arguments": args, "name": name} for name, args in items])


TEXT, INVALID = "[]", ""
REFERENCES = [
    calls(("get_weather", {"city": "Paris", "unit": "c"})),
    calls(("get_weather", {"city": "Rome"})),
    calls(("book", {"flight": "AF1", "seats": 2})),
    TEXT,
    TEXT,
    calls(("book", {"flight": "BA2", "seats": 1})),
]
ANSWERS = [
    calls(("get_weather", {"unit": "c", "city": "Paris"})),  # right (key order does not matter)
    calls(("get_weather", {"city": "Rome", "unit": "c"})),  # right tool, one extra argument
    INVALID,  # an invalid answer never matches
    TEXT,  # right decision
    calls(("get_weather", {"city": "Oslo"})),  # a call where text was right
    TEXT,  # text where a call was right
]


def test_per_tool_metrics_match_hand_counts() -> None:
    claimed = np.array([True, True, False, False, True, False])
    table = nested(tool_metrics(REFERENCES, ANSWERS, claimed))
    overall = table["overall"]
    assert overall["decision_accuracy"] == pytest.approx(3 / 6)  # turns 1, 2, 4
    assert overall["name_accuracy"] == pytest.approx(2 / 4)  # tool turns 1, 2 of 1, 2, 3, 6
    assert overall["coverage"] == pytest.approx(3 / 6)
    weather, book = table["tools"]["get_weather"], table["tools"]["book"]
    assert (weather["n"], weather["name_accuracy"], weather["arguments_exact"]) == (2, 1.0, 0.5)
    assert weather["coverage"] == 1.0 and book["coverage"] == 0.0
    assert (book["n"], book["name_accuracy"], book["arguments_exact"]) == (2, 0.0, 0.0)
    city, unit = weather["parameters"]["city"], weather["parameters"]["unit"]
    assert (city["n"], city["exact"], city["f1"]) == (2, 1.0, 1.0)
    # unit: equal in turn 1 (tp), present only in the answer in turn 2 (fp): F1 = 2/(2+1)
    assert (unit["n"], unit["exact"]) == (2, 0.5) and unit["f1"] == pytest.approx(2 / 3)
    for name in ("flight", "seats"):  # never produced: every case a miss
        assert book["parameters"][name] == {"n": 2, "exact": 0.0, "f1": 0.0}


def test_without_a_cascade_there_is_no_coverage_and_mismatched_lengths_fail() -> None:
    rows = tool_metrics(REFERENCES, ANSWERS)
    assert not [r for r in rows if r.metric == "coverage"]
    with pytest.raises(ValueError, match="answers for"):
        tool_metrics(REFERENCES, ANSWERS[:-1])
    perfect = nested(tool_metrics(REFERENCES, REFERENCES))
    assert perfect["overall"] == {"decision_accuracy": 1.0, "name_accuracy": 1.0}
