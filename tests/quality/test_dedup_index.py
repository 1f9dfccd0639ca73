"""The persistent near-duplicate index: a curate over history plus new texts finds exactly the groups,
counts and calibration a full computation finds, while banding only what involves new texts."""

import random
from pathlib import Path

import numpy as np

from flywheel.quality import dedup_index
from flywheel.quality.dedup import duplicate_groups

WORDS = (
    "order",
    "refund",
    "card",
    "late",
    "broken",
    "where",
    "is",
    "my",
    "the",
    "package",
    "42",
    "7",
    "help",
)


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) for _ in range(n)]


def _outcome(texts: list[str], index: Path | None) -> tuple:
    groups = duplicate_groups(texts, threshold=0.7, common_share=0.9, index_path=index)
    calibration = [(p.a, p.b, p.score, p.merged, p.why) for p in groups.calibration]
    return groups.groups, groups.near_pairs, calibration


def test_incremental_index_gives_the_full_result(tmp_path: Path, monkeypatch) -> None:
    index = tmp_path / "indexes" / "w.dedup.npz"
    history, new = _texts(300, 1), _texts(60, 2)
    assert _outcome(history, index) == _outcome(history, None)  # first run: builds the index
    banded: list[int] = []
    original = dedup_index._pairs_with_new

    def spy(signatures: np.ndarray, is_new: np.ndarray, bands: int, rows: int) -> np.ndarray:
        banded.append(int(is_new.sum()))
        return original(signatures, is_new, bands, rows)

    monkeypatch.setattr(dedup_index, "_pairs_with_new", spy)
    grown = history + new
    full = _outcome(grown, None)
    assert full[1] > 0 and _outcome(grown, index) == full
    assert banded and banded[-1] <= len(set(new))  # only the new texts were banded against history
    forgotten = grown[40:]  # `flywheel forget` removed the oldest rows: their pairs must go too
    assert _outcome(forgotten, index) == _outcome(forgotten, None)


def test_other_parameters_rebuild_the_index(tmp_path: Path) -> None:
    index = tmp_path / "w.dedup.npz"
    texts = _texts(200, 3)
    duplicate_groups(texts, threshold=0.7, common_share=0.9, index_path=index)
    loose = duplicate_groups(texts, threshold=0.5, common_share=0.9, index_path=index)
    assert loose.near_pairs == duplicate_groups(texts, threshold=0.5, common_share=0.9).near_pairs
    index.write_bytes(b"not an index")  # unreadable: rebuilt, never an error
    assert (
        duplicate_groups(texts, threshold=0.5, common_share=0.9, index_path=index).near_pairs
        == loose.near_pairs
    )
