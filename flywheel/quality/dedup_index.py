"""A persistent near-duplicate index beside the warehouse: a curate bands and verifies only new texts.

The index of a workload holds, for every distinct text the last curate saw (keyed by its exact-
duplicate hash), its MinHash signature, and the verified candidate pairs that grouping and
calibration look at (merged, or within reach of the calibration window) with their exact Jaccard.
The next curate reuses the signatures and the pairs among texts it already knew, and computes only
what involves a new text: its signature, its band buckets against every text, and the Jaccard of
those candidates. The result is the same pair list a full computation gives, because a pair between
two known texts does not change while the parameters and the template-token set (`common`, which
decides each text's varying part) stay the same: both are in the index's fingerprint, and any change
rebuilds it. Texts gone from the pool (forgotten) are dropped when the index is rewritten; the index
holds hashes and signatures, never text.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from flywheel.quality.minhash import (
    ShingleVocabulary,
    band_pairs,
    jaccard_pairs,
    lsh_bands,
    merge_sorted,
    signatures,
    sorted_unique,
)

INDEX_VERSION = 1


def index_path(home: Path, workload_id: str) -> Path:
    """Where a workload's index lives, beside the warehouse (`flywheel forget` removes it)."""
    return home / "indexes" / f"{workload_id}.dedup.npz"


def fingerprint(params: dict[str, float | int], common: Iterable[str]) -> str:
    body = {"version": INDEX_VERSION, **params, "common": sorted(common)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def indexed_pairs(
    keys: list[str],
    shingles_of: Callable[[int], Iterable[str]],
    path: Path,
    *,
    print_: str,
    num_perm: int,
    seed: int,
    lsh_threshold: float,
    floor: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(pairs (i, j) sorted, exact Jaccard) with Jaccard >= floor, over texts known by their `keys`;
    what the index at `path` already holds is reused, and the index is rewritten."""
    cached = _load(path, print_)
    n = len(keys)
    old_at = np.full(n, -1, dtype=np.int64)
    if cached is not None:
        position = {key: i for i, key in enumerate(cached["keys"].tolist())}
        old_at = np.fromiter((position.get(key, -1) for key in keys), dtype=np.int64, count=n)
    is_new = old_at < 0
    vocabulary = ShingleVocabulary(num_perm, seed)
    ids: list[list[int]] = [[] for _ in range(n)]
    for index in np.flatnonzero(is_new).tolist():
        ids[index] = vocabulary.encode(shingles_of(index))
    sigs = np.empty((n, num_perm), dtype=np.uint32)
    if cached is not None and (~is_new).any():
        sigs[~is_new] = cached["signatures"][old_at[~is_new]]
    new_rows = np.flatnonzero(is_new)
    if len(new_rows):
        sigs[new_rows] = signatures([ids[i] for i in new_rows.tolist()], vocabulary)
    bands = lsh_bands(lsh_threshold, num_perm)
    fresh = band_pairs(sigs, *bands) if is_new.all() else _pairs_with_new(sigs, is_new, *bands)
    for index in np.unique(fresh).tolist():  # known texts met by a new one: their shingles too
        if not ids[index]:
            ids[index] = vocabulary.encode(shingles_of(index))
    scores = jaccard_pairs(ids, fresh, len(vocabulary.ids))
    keep = scores >= floor
    pairs, values = _merge(_known_pairs(cached, old_at), fresh[keep], scores[keep], n)
    _save(path, print_, keys, sigs, pairs, values)
    return pairs, values


def _known_pairs(cached: dict[str, np.ndarray] | None, old_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The cached pairs whose two texts are still in the pool, in today's positions."""
    if cached is None or not len(cached["pairs"]):
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float64)
    now_of_old = np.full(len(cached["keys"]), -1, dtype=np.int64)
    known = np.flatnonzero(old_at >= 0)
    now_of_old[old_at[known]] = known
    mapped = now_of_old[cached["pairs"]]
    alive = (mapped >= 0).all(axis=1)
    mapped = np.sort(mapped[alive], axis=1)
    return mapped, cached["scores"][alive]


def _merge(
    known: tuple[np.ndarray, np.ndarray], fresh: np.ndarray, fresh_scores: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    pairs = np.concatenate([known[0], fresh])
    scores = np.concatenate([known[1], fresh_scores])
    order = np.argsort(pairs[:, 0] * n + pairs[:, 1], kind="stable")
    return pairs[order], scores[order]


def _pairs_with_new(signatures: np.ndarray, is_new: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Every (i, j), i < j, sharing a band, with at least one new text; sorted and unique."""
    n = len(signatures)
    codes = np.empty(0, dtype=np.int64)
    for band in range(bands):
        block = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel()
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.concatenate([[True], sorted_keys[1:] != sorted_keys[:-1]]))
        sizes = np.diff(np.concatenate([starts, [n]]))
        found: list[np.ndarray] = []
        for start, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
            members = order[start : start + size].astype(np.int64)
            new = members[is_new[members]]
            if not len(new):
                continue  # known texts only: their pairs are in the index
            a, b = np.meshgrid(new, members, indexing="ij")
            a, b = a.ravel(), b.ravel()
            distinct = a != b
            found.append(np.minimum(a[distinct], b[distinct]) * n + np.maximum(a[distinct], b[distinct]))
        if found:  # a pair of two new texts came twice
            codes = merge_sorted(codes, sorted_unique(np.concatenate(found)))
    return np.stack([codes // n, codes % n], axis=1)


def _load(path: Path, print_: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["fingerprint"]) != print_:
                return None  # other parameters or template tokens: rebuilt from scratch
            return {name: data[name] for name in ("keys", "signatures", "pairs", "scores")}
    except (OSError, KeyError, ValueError):
        return None  # absent or unreadable: a cache, rebuilt


def _save(
    path: Path, print_: str, keys: list[str], sigs: np.ndarray, pairs: np.ndarray, scores: np.ndarray
) -> None:
    """Written to a temporary file and renamed: a crash leaves the old index or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, fingerprint=np.array(print_), keys=np.array(keys, dtype=str), signatures=sigs,
             pairs=pairs.astype(np.int64), scores=scores)  # fmt: skip
    os.replace(partial, path)
