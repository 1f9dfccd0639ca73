"""Precision and recall of the PII scrubber on a labelled sample with hard negatives."""

from __future__ import annotations

from flywheel.quality.pii import DEFAULT_PATTERNS, Scrubber
from tests.quality.pii_samples import SAMPLES


def found_values(text: str) -> set[tuple[str, str]]:
    scrubber = Scrubber(DEFAULT_PATTERNS)
    scrubber(text)
    return {(placeholder.split("_")[0][1:].lower().replace("national", "national_id"), value)
            for placeholder, value in scrubber.originals.items()}  # fmt: skip


def precision_recall() -> tuple[float, float, list[str]]:
    hits = found = expected = 0
    misses: list[str] = []
    for text, truth in SAMPLES:
        got, want = found_values(text), set(truth)
        hits += len(got & want)
        found += len(got)
        expected += len(want)
        if got != want:
            misses.append(f"{text[:50]!r}: extra {sorted(got - want)} missing {sorted(want - got)}")
    return hits / found if found else 1.0, hits / expected, misses


def test_precision_and_recall_on_labelled_sample() -> None:
    precision, recall, misses = precision_recall()
    print(f"PII precision {precision:.3f} recall {recall:.3f} on {len(SAMPLES)} texts")
    assert precision >= 0.95, misses
    assert recall >= 0.9, misses


def test_hard_negatives_are_untouched() -> None:
    for text, truth in SAMPLES:
        if not truth:
            assert found_values(text) == set(), text
