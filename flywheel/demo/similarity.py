"""The documented text similarity behind planted.json's near-duplicate figures.

Jaccard similarity of character 5-gram sets of the text lower-cased with whitespace runs collapsed.
`similar_pairs` is exact (AllPairs prefix filtering: every pair at or above the threshold is found, no
approximation) and fast enough to run on every generation.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping

SHINGLE = 5
THRESHOLD = 0.8
MEASURE = {
    "similarity": "jaccard",
    "shingles": f"char-{SHINGLE}",
    "normalize": "lowercase, collapse whitespace",
    "threshold": THRESHOLD,
}


def shingles(text: str, k: int = SHINGLE) -> set[str]:
    norm = re.sub(r"\s+", " ", text.lower()).strip()
    if len(norm) <= k:
        return {norm}
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb)


def similar_pairs(texts: Mapping[int, str], threshold: float = THRESHOLD) -> list[tuple[int, int, float]]:
    """Every (a, b, jaccard) with a < b and jaccard >= threshold, sorted."""
    sets = {key: shingles(text) for key, text in texts.items()}
    freq = Counter(s for group in sets.values() for s in group)
    rank = {s: position for position, s in enumerate(sorted(freq, key=lambda s: (freq[s], s)))}.__getitem__
    index: dict[str, list[int]] = defaultdict(list)
    out = []
    for key in sorted(sets, key=lambda k: (len(sets[k]), k)):
        group = sets[key]
        size = len(group)
        prefix = sorted(group, key=rank)[: size - math.ceil(threshold * size) + 1]
        candidates = {other for s in prefix for other in index[s]}
        for other in candidates:
            if len(sets[other]) < threshold * size:
                continue
            inter = len(group & sets[other])
            score = inter / (size + len(sets[other]) - inter)
            if score >= threshold:
                out.append((min(key, other), max(key, other), round(score, 4)))
        for s in prefix:
            index[s].append(key)
    return sorted(out)
