"""The persistent near-duplicate index: a curate over history plus new texts finds exactly the groups,
counts and calibration a full computation finds, while banding only what involves new texts."""

import random
from pathlib import Path

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
    for pair in groups.calibration:  # checked pairs nearest the threshold, flagged by the threshold
        assert abs(pair.score - 0.7) <= 0.1 and pair.merged == (pair.score >= 0.7) and pair.a < pair.b
    return groups.groups, groups.near_pairs


def test_incremental_index_gives_the_full_result(tmp_path: Path, monkeypatch) -> None:
    index = tmp_path / "indexes" / "w.dedup.npz"
    history, new = _texts(300, 1), _texts(60, 2)
    assert _outcome(history, index) == _outcome(history, None)  # first run: builds the index
    checked: list[int] = []
    original = dedup_index.link_candidates

    def spy(linker, keys, shingles_of, digits, threshold, is_new=None) -> None:
        checked.append(len(keys) if is_new is None else int(is_new.sum()))
        return original(linker, keys, shingles_of, digits, threshold, is_new)

    monkeypatch.setattr(dedup_index, "link_candidates", spy)
    grown = history + new
    full = _outcome(grown, None)
    assert full[1] > 0 and _outcome(grown, index) == full
    assert checked[-1] <= len(set(new))  # only pairs with a new text were checked against history
    forgotten = grown[40:]  # `flywheel forget` removed the oldest rows: their components may split
    assert _outcome(forgotten, index) == _outcome(forgotten, None)
    assert checked[-1] > len(set(new))  # rebuilt: every text checked again


def test_other_parameters_rebuild_the_index(tmp_path: Path) -> None:
    index = tmp_path / "w.dedup.npz"
    texts = _texts(200, 3)
    duplicate_groups(texts, threshold=0.7, common_share=0.9, index_path=index)
    loose = duplicate_groups(texts, threshold=0.5, common_share=0.9, index_path=index)
    assert loose.groups == duplicate_groups(texts, threshold=0.5, common_share=0.9).groups
    assert loose.near_pairs > duplicate_groups(texts, threshold=0.7, common_share=0.9).near_pairs
    index.write_bytes(b"not an index")  # unreadable: rebuilt, never an error
    again = duplicate_groups(texts, threshold=0.5, common_share=0.9, index_path=index)
    assert (again.groups, again.near_pairs) == (loose.groups, loose.near_pairs)
