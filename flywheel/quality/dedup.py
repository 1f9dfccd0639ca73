"""Duplicate groups: exact (normalized text hash) and near (MinHash/LSH over character shingles).

Text is normalized first: lower case, punctuation, emoji and spacing dropped (PII placeholders kept),
so "Sorry, nevermind :)" and "sorry nevermind" are exact duplicates. Near duplicates are Jaccard
similarity of character 3-gram sets of the normalized text at or above a threshold (0.7 by default:
short chat messages lose a lot of shingles to one inserted word or typo) *and* the same numbers in
both texts, because two requests that differ only in an order id, a quantity or a time ask for
different things. Templated traffic ("Classify this headline: ... Answer with one of ...") would make
every pair look alike, so near duplicates are judged on the *varying part*: tokens found in at least
`common_share` of the texts (template words, boilerplate) are dropped before shingling, when the pool
has at least MIN_TEXTS_FOR_COMMON texts. LSH only proposes candidate pairs (tuned below the threshold
so borderline pairs are not missed); every pair is then verified exactly, and the pairs nearest the
threshold are kept as its calibration (shown by `flywheel quality`). Groups are connected
components, which is what a leakage-free split needs: no two members of one component may land in
different splits.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.quality.minhash import ShingleVocabulary, band_pairs, jaccard_pairs, lsh_bands, signatures

LSH_MARGIN = 0.15
CALIBRATION_MARGIN = 0.1  # pairs within this of the threshold are shown as calibration
CALIBRATION_PAIRS = 10
MIN_TEXTS_FOR_COMMON = 20
_TOKENS = re.compile(r"<[A-Za-z][A-Za-z0-9_]*>|[^\W_]+")
_NUMBERS = re.compile(r"\d+")


def normalize_text(text: str) -> str:
    return " ".join(token.lower() for token in _TOKENS.findall(text))


def numbers(text: str) -> tuple[str, ...]:
    return tuple(sorted(_NUMBERS.findall(text)))


def text_hash(text: str) -> str:
    """Key of exact duplicates: same text up to case and whitespace."""
    return hashlib.sha256(normalize_text(text).encode()).hexdigest()[:24]


def shingles(text: str, k: int = 3) -> set[str]:
    norm = normalize_text(text)
    if len(norm) <= k:
        return {norm}
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


def common_tokens(texts: list[str], share: float | None) -> frozenset[str]:
    """Tokens in at least `share` of the texts (template/boilerplate), when there are enough texts."""
    if share is None or len(texts) < MIN_TEXTS_FOR_COMMON:
        return frozenset()
    frequency: Counter[str] = Counter()
    for text in texts:
        frequency.update(set(normalize_text(text).split()))
    return frozenset(token for token, n in frequency.items() if n >= share * len(texts))


def varying_text(text: str, common: frozenset[str]) -> str:
    """The normalized text without the common tokens (the whole text when nothing else is left)."""
    tokens = normalize_text(text).split()
    kept = [token for token in tokens if token not in common]
    return " ".join(kept or tokens)


def jaccard(a: set[Any], b: set[Any]) -> float:
    inter = len(a & b)
    union = len(a) + len(b) - inter  # |a | b| without building the union
    return inter / union if union else 1.0


@dataclass(frozen=True, slots=True)
class NearPair:
    """Two texts LSH proposed, their Jaccard on the varying part, and whether they were merged."""

    a: int
    b: int
    score: float
    merged: bool
    why: str  # "near_duplicate", "below_threshold", "numbers_differ"


@dataclass(slots=True)
class DuplicateGroups:
    """Components of size >= 2, members in input order; `exact_key[i]` tells exact from near."""

    groups: list[list[int]]
    exact_key: list[str]
    near_pairs: int
    calibration: list[NearPair] = field(default_factory=list)
    common: frozenset[str] = frozenset()

    def group_of(self) -> dict[int, int]:
        """Member index -> index of the group in `groups`."""
        return {member: g for g, members in enumerate(self.groups) for member in members}


def near_duplicate_pairs(
    texts: list[str],
    *,
    threshold: float = 0.7,
    shingle_size: int = 3,
    num_perm: int = 128,
    seed: int = 1,
    common: frozenset[str] = frozenset(),
) -> list[tuple[int, int, float]]:
    """Every (i, j, jaccard) with i < j and jaccard >= threshold that LSH proposes (verified)."""
    candidates = candidate_pairs(
        texts, threshold=threshold, shingle_size=shingle_size, num_perm=num_perm, seed=seed, common=common
    )
    return [(pair.a, pair.b, pair.score) for pair in candidates if pair.merged]


def candidate_pairs(
    texts: list[str],
    *,
    threshold: float = 0.7,
    shingle_size: int = 3,
    num_perm: int = 128,
    seed: int = 1,
    common: frozenset[str] = frozenset(),
    relevant_only: bool = False,
) -> list[NearPair]:
    """Every pair LSH proposes (tuned LSH_MARGIN below the threshold), scored on the varying part;
    with `relevant_only`, just the merged ones and those within CALIBRATION_MARGIN of the threshold
    (all that grouping and calibration look at: templated traffic proposes millions of pairs).

    The sketches and bands are datasketch's (see `minhash.py`), computed with numpy. This lists every
    pair (the reference, and what `flywheel quality` tooling inspects); `duplicate_groups` needs only
    the components and gets them without listing every pair (`near_links`)."""
    floor = threshold - CALIBRATION_MARGIN - 1e-4  # below it no pair rounds into calibration (nor merges)
    vocabulary = ShingleVocabulary(num_perm, seed)
    ids = [vocabulary.encode(shingles(varying_text(text, common), shingle_size)) for text in texts]
    bands, rows = lsh_bands(max(0.3, threshold - LSH_MARGIN), num_perm)
    found = band_pairs(signatures(ids, vocabulary), bands, rows)
    scores = jaccard_pairs(ids, found, len(vocabulary.ids))
    if relevant_only:
        keep = scores >= floor
        found, scores = found[keep], scores[keep]
    digits = [numbers(normalize_text(text)) for text in texts]  # a list: millions of lookups follow
    pairs = []
    for (index, other), exact in zip(found.tolist(), scores.tolist(), strict=True):
        score = round(exact, 4)
        if relevant_only and score < threshold and threshold - score > CALIBRATION_MARGIN:
            continue
        same_numbers = digits[index] == digits[other]
        merged = same_numbers and score >= threshold
        if relevant_only and not merged and abs(score - threshold) > CALIBRATION_MARGIN:
            continue
        why = "near_duplicate" if merged else ("numbers_differ" if score >= threshold else "below_threshold")
        pairs.append(NearPair(index, other, score, merged, why))
    return pairs  # band_pairs yields them sorted by (a, b)


def calibration_pairs(
    pairs: list[NearPair], threshold: float, limit: int = CALIBRATION_PAIRS
) -> list[NearPair]:
    """The pairs closest to the threshold on either side: what a threshold change would flip."""
    near = [pair for pair in pairs if abs(pair.score - threshold) <= CALIBRATION_MARGIN]
    return sorted(near, key=lambda pair: (abs(pair.score - threshold), pair.a, pair.b))[:limit]


def duplicate_groups(
    texts: list[str],
    *,
    threshold: float = 0.7,
    shingle_size: int = 3,
    num_perm: int = 128,
    seed: int = 1,
    near: bool = True,
    common_share: float | None = None,
    index_path: Path | None = None,
) -> DuplicateGroups:
    """Connected components of exact-duplicate and near-duplicate links between `texts`.

    Near links come from `dedup_index.near_components` (union-find over the LSH candidates: the same
    components as every verified candidate pair gives, see `near_links`); `near_pairs` counts the
    links that joined two components (distinct texts in near families minus the families)."""
    norms = [normalize_text(text) for text in texts]  # normalized once: hashing, tokens, shingles
    keys = [hashlib.sha256(norm.encode()).hexdigest()[:24] for norm in norms]
    parent = list(range(len(texts)))
    first_with_key: dict[str, int] = {}
    for index, key in enumerate(keys):
        parent[index] = first_with_key.setdefault(key, index)
    unique = sorted(first_with_key.values())
    roots = np.arange(len(unique))
    calibration: list[NearPair] = []
    common = _common_of_norms([norms[i] for i in unique], common_share)
    if near and len(unique) > 1:
        roots, window = _near(
            unique, norms, keys, common, threshold, shingle_size, num_perm, seed, index_path
        )
        calibration = [
            NearPair(unique[a], unique[b], score, merged, "near_duplicate" if merged else "below_threshold")
            for score, a, b, merged in window
        ]
    for position, index in enumerate(unique):
        parent[index] = unique[roots[position]]
    components: dict[int, list[int]] = {}
    for index in range(len(texts)):
        components.setdefault(parent[parent[index]], []).append(index)
    groups = [members for members in components.values() if len(members) > 1]
    groups.sort(key=lambda members: members[0])
    near_pairs = len(unique) - len(set(roots.tolist()))
    return DuplicateGroups(groups, keys, near_pairs, calibration, common)


def _common_of_norms(norms: list[str], share: float | None) -> frozenset[str]:
    """`common_tokens` of already normalized texts."""
    if share is None or len(norms) < MIN_TEXTS_FOR_COMMON:
        return frozenset()
    frequency: Counter[str] = Counter()
    for norm in norms:
        frequency.update(set(norm.split()))
    return frozenset(token for token, n in frequency.items() if n >= share * len(norms))


def _near(
    unique: list[int],
    norms: list[str],
    keys: list[str],
    common: frozenset[str],
    threshold: float,
    shingle_size: int,
    num_perm: int,
    seed: int,
    index_path: Path | None,
) -> tuple[np.ndarray, list[tuple[float, int, int, bool]]]:
    from flywheel.quality.dedup_index import fingerprint, near_components

    params = {"threshold": threshold, "shingle_size": shingle_size, "num_perm": num_perm, "seed": seed,
              "lsh_margin": LSH_MARGIN}  # fmt: skip

    def text_of(position: int) -> str:
        return _varying_norm(norms[unique[position]], common)

    return near_components(
        [keys[i] for i in unique],
        text_of,
        [numbers(norms[i]) for i in unique],
        threshold=threshold,
        lsh_threshold=max(0.3, threshold - LSH_MARGIN),
        num_perm=num_perm,
        seed=seed,
        shingle_size=shingle_size,
        path=index_path,
        print_=fingerprint(params, common),
    )


def _varying_norm(norm: str, common: frozenset[str]) -> str:
    tokens = norm.split()
    kept = [token for token in tokens if token not in common]
    return " ".join(kept or tokens)
