"""The schema-tool filler's decoding: typed candidates read from the text, and the joint assignment
that ranks them with the span heads (here: hand-made head scores, no model)."""

from __future__ import annotations

import torch

from flywheel.train.schematool.candidates import (
    array_candidates,
    entity_spans,
    enum_mentions,
    number_candidates,
    snap,
)
from flywheel.train.schematool.data import ABSENT, SPAN, TRUE, Function
from flywheel.train.schematool.filler import Scored, SpanScorer, fill_arguments, joint_assignment

CONTEXT = (
    "user: Find the Metropolitan Museum of Art. See Liverpool F.C. Include stats. Ask John Doe, born "
    "01-01-1980, docket 2022/AL2562 at ~/data/run.nii and 'ABC Ltd.' at 5% of $10,000 for five years."
)


def texts(spans: list) -> list[str]:
    return [CONTEXT[a:b] for a, b in spans]


def test_entities_are_whole_names_quotes_and_ids() -> None:
    found = texts(entity_spans(CONTEXT))
    for name in ("Metropolitan Museum of Art", "Liverpool F.C.", "John Doe", "01-01-1980", "2022/AL2562",
                 "~/data/run.nii", "ABC Ltd."):  # fmt: skip
        assert name in found, (name, found)
    # a sentence's first word is capitalized for grammar
    assert "Find the Metropolitan Museum of Art" not in found and "Ask John Doe" in found
    assert all(not t.endswith((",", "?", "'")) for t in found)
    carlsen = CONTEXT.index("Doe")
    assert CONTEXT[slice(*snap(carlsen, carlsen + 3, entity_spans(CONTEXT)))] == "John Doe"
    outside = CONTEXT.index("born")
    assert snap(outside, outside + 4, entity_spans(CONTEXT)) == (outside, outside + 4)


def test_numbers_arrays_and_enum_options_are_read_by_type() -> None:
    floats = {c.value for c in number_candidates(CONTEXT, {"type": "float"})}
    assert {0.05, 10000.0, 5.0} <= floats  # a percentage for a float parameter is a fraction
    integers = [c.value for c in number_candidates(CONTEXT, {"type": "integer"})]
    assert 5 in integers and 10000 in integers and 0.05 not in integers
    text = "user: flows=[200,300,400], pick (40.7, -74.0) from 2015 to 2021; rate efficient, calm and kind"
    ints = {"type": "array", "items": {"type": "integer"}}
    values = [c.value for c in array_candidates(text, ints)]
    assert [200, 300, 400] in values and [2015, 2021] in values
    assert [40.7, -74.0] in [
        c.value for c in array_candidates(text, {"type": "array", "items": {"type": "float"}})
    ]
    strings = [c.value for c in array_candidates(text, {"type": "array", "items": {"type": "string"}})]
    assert ["efficient", "calm", "kind"] in strings
    options = ["strengths", "weaknesses", "values"]
    assert [o for _, _, o in enum_mentions("user: strength and weakness traits", options)] == options[:2]
    picked = array_candidates("user: strength and weakness", {"type": "array", "items": {"enum": options}})
    assert [c.value for c in picked] == [["strengths", "weaknesses"]]


def scorer_for(context: str, peaks: dict[str, float]) -> SpanScorer:
    """A span scorer whose heads put `peaks[word]` on each listed word's first/last token."""
    offsets, start = [], []
    for word in context.split(" "):
        a = context.index(word, offsets[-1][1] if offsets else 0)
        offsets.append((a, a + len(word)))
        start.append(peaks.get(word, -5.0))
    logits = torch.tensor(start)
    return SpanScorer(logits, logits.clone(), offsets, [1] * len(offsets))


def test_joint_fill_keeps_values_apart_in_schema_order_and_skips_unsure_optionals() -> None:
    context = "user: sides 4 and 5 in Paris please"
    function = Function("hypot", "", {
        "x": {"type": "integer"}, "y": {"type": "integer"},
        "z": {"type": "integer"}, "exact": {"type": "boolean"}, "city": {"type": "string"},
    }, ("x", "y"))  # fmt: skip
    # the heads like "5" for both x and y; only the joint assignment keeps them apart, in order
    peaks = {"4": 1.0, "5": 1.2, "Paris": 2.0}
    present, absent = torch.tensor([0.1, 0.9, 0.0, 0.0]), torch.tensor([0.9, 0.1, 0.0, 0.0])
    rows = [
        (scorer_for(context, peaks), present, []),
        (scorer_for(context, peaks), present, []),
        (scorer_for(context, peaks), absent, []),  # optional, the mode head says absent
        (scorer_for(context, peaks), torch.tensor([0.1, 0.0, 0.8, 0.1]), []),
        (scorer_for(context, peaks), torch.tensor([0.55, 0.45, 0.0, 0.0]), []),  # unsure: left out
    ]
    arguments, sure = fill_arguments(function, context, rows)
    assert arguments == {"x": 4, "y": 5, "exact": True}
    assert abs(sure - 0.55) < 1e-6 and ABSENT == 0 and SPAN == 1 and TRUE == 2


def test_a_number_nobody_took_goes_to_an_optional_numeric_parameter() -> None:
    context = "user: principal 1000 for 3 years compounded 4 times"
    function = Function("f", "", {"principal": {"type": "integer"}, "years": {"type": "integer"},
                                  "n": {"type": "integer"}}, ("principal", "years"))  # fmt: skip
    peaks = {"1000": 2.0, "3": 1.0, "4": 0.5}
    absent = torch.tensor([0.9, 0.1, 0.0, 0.0])
    present = torch.tensor([0.0, 1.0, 0.0, 0.0])
    rows = [(scorer_for(context, peaks), p, []) for p in (present, present, absent)]
    assert fill_arguments(function, context, rows)[0] == {"principal": 1000, "years": 3, "n": 4}


def test_a_required_value_shares_words_only_when_nothing_else_fits() -> None:
    from flywheel.train.schematool.candidates import Candidate

    only = Scored(Candidate(0, 3, 7), 1.0, True)
    chosen = joint_assignment([("a", True, [only]), ("b", True, [only])])
    assert chosen["a"].candidate.value == 7 and chosen["b"].candidate.value == 7
