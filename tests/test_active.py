"""The active-learning ranking's pure parts: error estimates, expected gain, orderings."""

from __future__ import annotations

from flywheel.active import ServedPriority, estimated_errors, expected_gain, prioritize, synthesis_slices
from flywheel.records import Example


def p(
    i: str, reasons: tuple[str, ...], score: float, slice_: str | None, wrong: bool | None
) -> ServedPriority:
    return ServedPriority(i, reasons, score, slice_, wrong)


PRIORITIES = [
    p("a", ("negative_feedback",), 16.0, "refund", None),
    p("b", ("disagreed",), 8.0, "refund", True),
    p("c", ("fallback",), 4.0, "billing", True),
    p("d", ("fallback",), 4.0, "billing", False),
    p("e", ("rare_slice",), 1.0, "gift", None),
    *(p(f"u{i}", (), 0.0, "shipping", i == 0) for i in range(5)),  # shadowed: 1 wrong in 5
]


def test_unknown_errors_take_their_groups_known_rate() -> None:
    errors = estimated_errors(PRIORITIES)
    assert errors["b"] == 1.0 and errors["d"] == 0.0
    assert errors["a"] == errors["e"] == 3 / 8  # no known error in their group: all known calls' rate
    assert [errors[f"u{i}"] for i in range(5)] == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_expected_gain_of_a_budget() -> None:
    gain = expected_gain(PRIORITIES, budget=3)
    total = 3 / 8 + 1 + 1 + 0 + 3 / 8 + 1
    assert gain["selected"] == 3 and gain["flagged"] == 5 and gain["served"] == 10
    assert gain["estimated_errors"] == round(total, 3)
    assert gain["share_of_errors_covered"] == round((3 / 8 + 2) / total, 4)
    assert gain["uniform_share"] == 0.3
    assert gain["by_top_reason"]["fallback"] == 2 and gain["by_reason"]["rare_slice"] == 1


def test_orders_for_relabel_and_synthesis() -> None:
    def example(i: str, slice_: str) -> Example:
        return Example(example_id=i, workload_id="w", messages=[], target={}, slice=slice_, interaction_id=i)

    examples = [
        example("z", "shipping"),
        example("e", "gift"),
        example("c", "billing"),
        example("a", "refund"),
    ]
    assert [e.interaction_id for e in prioritize(examples, PRIORITIES)] == ["a", "c", "e", "z"]
    # slices where served calls went wrong (by summed priority), then the rare ones not among them
    assert synthesis_slices(["gift", "toys"], PRIORITIES) == ["refund", "billing", "gift", "toys"]
