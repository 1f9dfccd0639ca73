"""The numpy MinHash/LSH must propose exactly the pairs datasketch proposes, and score them exactly."""

import random

import numpy as np
from datasketch import MinHash, MinHashLSH

from flywheel.quality.dedup import CALIBRATION_MARGIN, candidate_pairs, shingles
from flywheel.quality.minhash import ShingleVocabulary, band_pairs, jaccard_pairs, lsh_bands, signatures

WORDS = ("order", "refund", "my", "card", "late", "broken", "help", "where", "is", "the", "42", "7")


def _texts(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 10))) for _ in range(n)]
    return [*texts, "", "a", "ab"]  # short texts: one shingle each (shingles() never returns an empty set)


def test_signatures_and_candidate_pairs_match_datasketch() -> None:
    sets = [sorted(shingles(text)) for text in _texts(600)]
    reference = MinHash.bulk([[s.encode() for s in group] for group in sets], num_perm=64, seed=5)
    vocabulary = ShingleVocabulary(64, 5)
    ids = [vocabulary.encode(group) for group in sets]
    ours = signatures(ids, vocabulary)
    assert all((ours[i] == m.hashvalues).all() for i, m in enumerate(reference))
    lsh = MinHashLSH(threshold=0.55, num_perm=64)
    for index, m in enumerate(reference):
        lsh.insert(index, m)
    expected = {(i, other) for i, m in enumerate(reference) for other in lsh.query(m) if other > i}
    found = band_pairs(ours, *lsh_bands(0.55, 64))
    assert expected and {(int(a), int(b)) for a, b in found} == expected
    assert (np.diff(found[:, 0] * len(sets) + found[:, 1]) > 0).all()  # sorted, no repeats


def test_jaccard_pairs_equal_set_arithmetic() -> None:
    sets = [sorted(shingles(text)) for text in _texts(200, seed=9)]
    vocabulary = ShingleVocabulary(16, 1)
    ids = [vocabulary.encode(group) for group in sets]
    pairs = np.array([(i, j) for i in range(0, 200, 7) for j in range(i + 1, 200, 11)], dtype=np.int64)
    scores = jaccard_pairs(ids, pairs, len(vocabulary.ids))
    for (a, b), score in zip(pairs.tolist(), scores, strict=True):
        left, right = set(sets[a]), set(sets[b])
        assert score == len(left & right) / len(left | right)


def test_relevant_only_keeps_exactly_the_merged_and_near_threshold_pairs() -> None:
    texts = _texts(400, seed=11)
    full = candidate_pairs(texts, threshold=0.7)
    relevant = candidate_pairs(texts, threshold=0.7, relevant_only=True)
    expected = [p for p in full if p.merged or abs(p.score - 0.7) <= CALIBRATION_MARGIN]
    assert relevant == expected and len(relevant) < len(full)
    assert {p.why for p in relevant} >= {"near_duplicate", "below_threshold"}
