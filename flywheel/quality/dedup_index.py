"""Near-duplicate components over a workload's distinct texts, with a persistent index beside the
warehouse so that a curate bands and checks only new texts.

The index of a workload holds, for every distinct text the last curate saw (keyed by its exact-
duplicate hash), its LSH band keys (`near_links.band_keys`), its near-duplicate component (the
position of the component's earliest text), its shingle-id set (with the shingle vocabulary) and the
calibration pairs found so far. The next curate loads the components and shingle sets of the texts it
already knew, shingles and bands only new texts, and checks only candidate pairs with a new text (see
`near_links`). The components are the same a full computation gives, because a pair of two known
texts does not change while the parameters and the template-token set (`common`, which decides each
text's varying part) stay the same: both are in the index's fingerprint, and any change rebuilds it.
A known text gone from the pool (`flywheel forget`) may split its component, so the index is then
rebuilt too. The shingles are character 3-grams of the PII-scrubbed, normalized varying text, so the
index is derived data like the snapshot: `flywheel forget` removes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from flywheel.quality.minhash import ShingleVocabulary, lsh_bands
from flywheel.quality.near_links import Linker, band_keys, link_candidates, nearest
from flywheel.quality.shingle_ids import encode_texts, signatures_csr

INDEX_VERSION = 2
SIGNATURE_CHUNK = 10_000  # texts shingled and signed at once: encode_texts holds ~8 int64 copies of
# the chunk's characters (+425 MiB at 50,000 texts, the 62,400 curate's peak); ids are per shingle
# string, so the chunking changes neither signatures nor Jaccard values
CALIBRATION_PAIRS = 10


def index_path(home: Path, workload_id: str) -> Path:
    """Where a workload's index lives, beside the warehouse (`flywheel forget` removes it)."""
    return home / "indexes" / f"{workload_id}.dedup.npz"


def fingerprint(params: dict[str, float | int], common: Iterable[str]) -> str:
    body = {"version": INDEX_VERSION, **params, "common": sorted(common)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]


def near_components(
    keys: list[str],
    text_of: Callable[[int], str],
    digits: list[tuple[str, ...]],
    *,
    threshold: float,
    lsh_threshold: float,
    num_perm: int,
    seed: int,
    shingle_size: int = 3,
    path: Path | None = None,
    print_: str = "",
) -> tuple[np.ndarray, list[tuple[float, int, int, bool]]]:
    """(component root per text, calibration pairs (score, a, b, merged)) over distinct texts known by
    their `keys`; with `path`, what the index holds is reused and the index is rewritten."""
    n = len(keys)
    cached = _load(path, print_) if path is not None else None
    old_at = _positions(cached, keys)
    if old_at is None:
        cached, old_at = None, np.full(n, -1, dtype=np.int64)
    is_new = old_at < 0
    vocabulary = ShingleVocabulary(num_perm, seed)
    if cached is not None:  # the stored shingle ids stay valid: the vocabulary is rebuilt in id order
        vocabulary.ids = {shingle: i for i, shingle in enumerate(cached["shingles"].tolist())}
    bands, rows = lsh_bands(lsh_threshold, num_perm)
    table = np.empty((n, bands), dtype=np.uint64)
    if cached is not None:
        table[~is_new] = cached["band_keys"][old_at[~is_new]]
    new_rows = np.flatnonzero(is_new)
    indptr, ids = [np.zeros(1, dtype=np.int64)], []

    def encode(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        local_ptr, local_ids = encode_texts([text_of(i) for i in chunk.tolist()], vocabulary, shingle_size)
        indptr.append(local_ptr[1:] + indptr[-1][-1])
        ids.append(local_ids)
        return local_ptr, local_ids

    for start in range(0, len(new_rows), SIGNATURE_CHUNK):
        chunk = new_rows[start : start + SIGNATURE_CHUNK]
        table[chunk] = band_keys(signatures_csr(*encode(chunk), vocabulary), bands, rows)
    sets = _all_sets(n, new_rows, np.concatenate(indptr), ids, cached, old_at)
    linker = Linker(n)
    old_window: list[tuple[float, int, int, bool]] = []
    if cached is not None:
        now_of_old = _now_of_old(old_at, len(cached["keys"]))
        for i, root in zip(
            np.flatnonzero(~is_new).tolist(),
            now_of_old[cached["roots"][old_at[~is_new]]].tolist(),
            strict=True,
        ):
            linker.union(i, root)
        old_window = _mapped_window(cached, now_of_old)
    link_candidates(linker, table, sets.of, digits, threshold, is_new if cached is not None else None)
    calibration = nearest(old_window + linker.window, threshold, CALIBRATION_PAIRS)
    roots = linker.roots()
    if path is not None:
        _save(path, print_, keys, table, roots, calibration, sets, list(vocabulary.ids))
    return roots, calibration


class _ShingleSets:
    """Every text's shingle-id set in one CSR (new texts encoded now, known ones from the index), as
    frozensets for the exact Jaccard checks through a bounded cache."""

    # ~5 KiB a frozenset: 200,000 held 360 MiB at 62,400 texts (the dedup peak) for the same CPU time
    LIMIT = 20_000

    def __init__(self, indptr: np.ndarray, ids: np.ndarray) -> None:
        self.indptr, self.ids = indptr, ids
        self.bounds = indptr.tolist()
        self.cache: dict[int, frozenset[int]] = {}

    def of(self, position: int) -> frozenset[int]:
        found = self.cache.get(position)
        if found is None:
            if len(self.cache) >= self.LIMIT:
                self.cache.clear()
            start, end = self.bounds[position], self.bounds[position + 1]
            found = self.cache[position] = frozenset(self.ids[start:end].tolist())
        return found


def _all_sets(
    n: int,
    new_rows: np.ndarray,
    new_ptr: np.ndarray,
    new_ids: list[np.ndarray],
    cached: dict[str, np.ndarray] | None,
    old_at: np.ndarray,
) -> _ShingleSets:
    """One CSR over today's positions: new texts' ids, then the known texts' ids from the index."""
    lengths = np.zeros(n, dtype=np.int64)
    lengths[new_rows] = np.diff(new_ptr)
    known = np.flatnonzero(old_at >= 0)
    if cached is not None and len(known):
        old_ptr = cached["shingle_ptr"]
        lengths[known] = old_ptr[old_at[known] + 1] - old_ptr[old_at[known]]
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    ids = np.empty(int(indptr[-1]), dtype=np.int32)
    fresh = np.concatenate(new_ids) if new_ids else ids[:0]
    _gather(new_ptr, fresh, np.arange(len(new_rows)), indptr, new_rows, ids)
    if cached is not None and len(known):
        _gather(cached["shingle_ptr"], cached["shingle_ids"], old_at[known], indptr, known, ids)
    return _ShingleSets(indptr, ids)


def _gather(
    src_ptr: np.ndarray,
    src_ids: np.ndarray,
    src_rows: np.ndarray,
    dst_ptr: np.ndarray,
    dst_rows: np.ndarray,
    out: np.ndarray,
) -> None:
    """Copy CSR rows `src_rows` of (src_ptr, src_ids) into rows `dst_rows` of (dst_ptr, out)."""
    lengths = src_ptr[src_rows + 1] - src_ptr[src_rows]
    before = np.cumsum(lengths) - lengths  # where each row starts in the concatenation
    step = np.arange(int(lengths.sum()))
    source = np.repeat(src_ptr[src_rows] - before, lengths) + step
    out[np.repeat(dst_ptr[dst_rows] - before, lengths) + step] = src_ids[source]


def _positions(cached: dict[str, np.ndarray] | None, keys: list[str]) -> np.ndarray | None:
    """Each text's position in the index (-1: new); None when the index must be rebuilt (absent, or a
    text it holds is gone from the pool)."""
    if cached is None:
        return None
    position = {key: i for i, key in enumerate(cached["keys"].tolist())}
    old_at = np.fromiter((position.get(key, -1) for key in keys), dtype=np.int64, count=len(keys))
    if int((old_at >= 0).sum()) != len(position):
        return None  # forgotten texts: their components may split
    return old_at


def _now_of_old(old_at: np.ndarray, size: int) -> np.ndarray:
    now_of_old = np.full(size, -1, dtype=np.int64)
    known = np.flatnonzero(old_at >= 0)
    now_of_old[old_at[known]] = known
    return now_of_old


def _mapped_window(
    cached: dict[str, np.ndarray], now_of_old: np.ndarray
) -> list[tuple[float, int, int, bool]]:
    pairs = now_of_old[cached["calibration_pairs"]] if len(cached["calibration_pairs"]) else []
    return [
        (float(score), int(min(a, b)), int(max(a, b)), bool(merged))
        for (a, b), score, merged in zip(
            np.asarray(pairs).tolist(),
            cached["calibration_scores"],
            cached["calibration_merged"],
            strict=True,
        )
    ]


def _load(path: Path, print_: str) -> dict[str, np.ndarray] | None:
    names = ("keys", "band_keys", "roots", "calibration_pairs", "calibration_scores", "calibration_merged",
             "shingles", "shingle_ptr", "shingle_ids")  # fmt: skip
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["fingerprint"]) != print_:
                return None  # other parameters or template tokens: rebuilt from scratch
            return {name: data[name] for name in names}
    except (OSError, KeyError, ValueError):
        return None  # absent, unreadable or of an older version: a cache, rebuilt


def _save(
    path: Path,
    print_: str,
    keys: list[str],
    table: np.ndarray,
    roots: np.ndarray,
    calibration: list[tuple[float, int, int, bool]],
    sets: _ShingleSets,
    shingles: list[str],
) -> None:
    """Written to a temporary file and renamed: a crash leaves the old index or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial.npz")
    pairs = np.array([(a, b) for _, a, b, _ in calibration], dtype=np.int64).reshape(-1, 2)
    np.savez(partial, fingerprint=np.array(print_), keys=np.array(keys, dtype=str), band_keys=table,
             roots=roots, calibration_pairs=pairs,
             calibration_scores=np.array([p[0] for p in calibration], dtype=np.float64),
             calibration_merged=np.array([p[3] for p in calibration], dtype=bool),
             shingles=np.array(shingles, dtype=str), shingle_ptr=sets.indptr,
             shingle_ids=sets.ids)  # fmt: skip
    os.replace(partial, path)
