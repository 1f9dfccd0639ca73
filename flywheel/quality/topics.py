"""Topic clusters for workloads without a label to slice by (extraction, chat).

TF-IDF over words and word pairs, then k-means with a fixed seed: cheap, offline and deterministic.
Clusters are renamed in order of first appearance (`topic-00`, `topic-01`, ...) so that the same
inputs always give the same names, and each carries its top terms so a report can say what it is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class Topics:
    assignments: list[str]
    terms: dict[str, list[str]]


def choose_k(n: int) -> int:
    """About one cluster per 25 examples' square root: 4 for 400 rows, 20 for 10k."""
    return max(2, min(20, round(math.sqrt(n / 25))))


def topic_clusters(texts: list[str], *, k: int | None = None, seed: int = 13, top_terms: int = 5) -> Topics:
    """A topic name per text and the top terms of each topic."""
    k = min(k or choose_k(len(texts)), max(1, len(texts) // 2))
    if k < 2:
        return Topics(["topic-00"] * len(texts), {"topic-00": []})
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, max_features=20_000, sublinear_tf=True)
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # empty vocabulary: nothing to cluster on
        return Topics(["topic-00"] * len(texts), {"topic-00": []})
    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(matrix)
    rename: dict[int, str] = {}
    for cluster in model.labels_:
        rename.setdefault(int(cluster), f"topic-{len(rename):02d}")
    vocabulary = vectorizer.get_feature_names_out()
    terms = {
        rename[cluster]: [
            str(vocabulary[i]) for i in model.cluster_centers_[cluster].argsort()[::-1][:top_terms]
        ]
        for cluster in rename
    }
    return Topics([rename[int(c)] for c in model.labels_], terms)
