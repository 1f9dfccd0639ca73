"""Duplicate groups: exact (normalized text hash) and near (MinHash/LSH over character shingles).

Text is normalized first: lower case, punctuation, emoji and spacing dropped (PII placeholders kept),
so "Sorry, nevermind :)" and "sorry nevermind" are exact duplicates. Near duplicates are Jaccard
similarity of character 3-gram sets of the normalized text at or above a threshold (0.7 by default:
short chat messages lose a lot of shingles to one inserted word or typo) *and* the same numbers in
both texts, because two requests that differ only in an order id, a quantity or a time ask for
different things. LSH only proposes candidate pairs (tuned below the threshold so borderline pairs are
not missed); every pair is then verified exactly. Groups are connected components, which is what a
leakage-free split needs: no two members of one component may land in different splits.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

LSH_MARGIN = 0.15
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


def jaccard(a: set[str], b: set[str]) -> float:
    union = len(a | b)
    return len(a & b) / union if union else 1.0


@dataclass(slots=True)
class DuplicateGroups:
    """Components of size >= 2, members in input order; `exact_key[i]` tells exact from near."""

    groups: list[list[int]]
    exact_key: list[str]
    near_pairs: int

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
) -> list[tuple[int, int, float]]:
    """Every (i, j, jaccard) with i < j and jaccard >= threshold that LSH proposes (verified)."""
    from datasketch import MinHash, MinHashLSH

    sets = [shingles(text, shingle_size) for text in texts]
    digits = [numbers(normalize_text(text)) for text in texts]
    signatures = MinHash.bulk([[s.encode() for s in group] for group in sets], num_perm=num_perm, seed=seed)
    lsh = MinHashLSH(threshold=max(0.3, threshold - LSH_MARGIN), num_perm=num_perm)
    with lsh.insertion_session() as session:
        for index, signature in enumerate(signatures):
            session.insert(index, signature, check_duplication=False)
    pairs = []
    for index, signature in enumerate(signatures):
        for other in lsh.query(signature):
            if other > index and digits[index] == digits[other]:
                score = jaccard(sets[index], sets[other])
                if score >= threshold:
                    pairs.append((index, other, round(score, 4)))
    return sorted(pairs)


def duplicate_groups(
    texts: list[str],
    *,
    threshold: float = 0.7,
    shingle_size: int = 3,
    num_perm: int = 128,
    seed: int = 1,
    near: bool = True,
) -> DuplicateGroups:
    """Connected components of exact-duplicate and near-duplicate links between `texts`."""
    keys = [text_hash(text) for text in texts]
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first_with_key: dict[str, int] = {}
    for index, key in enumerate(keys):
        union(first_with_key.setdefault(key, index), index)
    unique = sorted(first_with_key.values())
    pairs = []
    if near and len(unique) > 1:
        found = near_duplicate_pairs(
            [texts[i] for i in unique],
            threshold=threshold,
            shingle_size=shingle_size,
            num_perm=num_perm,
            seed=seed,
        )
        pairs = [(unique[a], unique[b]) for a, b, _ in found]
        for a, b in pairs:
            union(a, b)
    components: dict[int, list[int]] = {}
    for index in range(len(texts)):
        components.setdefault(find(index), []).append(index)
    groups = [members for members in components.values() if len(members) > 1]
    groups.sort(key=lambda members: members[0])
    return DuplicateGroups(groups, keys, len(pairs))
