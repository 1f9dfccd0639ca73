"""Near-duplicate components without listing every pair must equal the components of every verified
candidate pair (the reference, `candidate_pairs`), on templated traffic with numbers, typos, copies,
short texts and non-ASCII text; and the vectorized shingling and band keys must equal what they replace."""

import random

import numpy as np

from flywheel.quality.dedup import candidate_pairs, duplicate_groups, normalize_text, shingles, text_hash
from flywheel.quality.minhash import ShingleVocabulary, band_pairs, lsh_bands, signatures
from flywheel.quality.near_links import band_keys
from flywheel.quality.shingle_ids import encode_texts, signatures_csr

OPENERS = ["hi", "hello team", "Dear ShopWave,", "urgent:", "", "Bonjour 👋", "quick question"]
ASKS = [
    "where is my order ORD-{n}? it was due on monday",
    "i was charged twice for order {n}, please refund one payment",
    "the app crashes when i open my cart on my pixel {d}",
    "how do i change the delivery address for an order i placed this morning",
    "can i return shoes that do not fit if i wore them once",
    "my password reset link never arrives, tried {d} times",
    "café crème à emporter — est-ce possible ?",
]


def _mixed(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    texts: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if texts and roll < 0.15:
            texts.append(rng.choice(texts).upper() + "  ")  # a copy (exact after normalization)
            continue
        if texts and roll < 0.35:  # a typo or an inserted word in an earlier text
            words = rng.choice(texts).split() or ["x"]
            at = rng.randrange(len(words))
            words[at] = words[at][::-1] if rng.random() < 0.5 else words[at] + " really"
            texts.append(" ".join(words))
            continue
        if roll < 0.4:
            texts.append(rng.choice(["ok", "?", "a", "", "thx", "ß"]))
            continue
        ask = rng.choice(ASKS).format(n=rng.randint(100_000, 100_040), d=rng.randint(1, 4))
        texts.append(f"{rng.choice(OPENERS)} {ask}".strip())
    return texts


def _reference_groups(texts: list[str], threshold: float, common: frozenset[str]) -> list[list[int]]:
    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[str, int] = {}
    for index, text in enumerate(texts):
        union(first.setdefault(text_hash(text), index), index)
    unique = sorted(first.values())
    for pair in candidate_pairs([texts[i] for i in unique], threshold=threshold, common=common):
        if pair.merged:
            union(unique[pair.a], unique[pair.b])
    components: dict[int, list[int]] = {}
    for index in range(len(texts)):
        components.setdefault(find(index), []).append(index)
    return sorted((m for m in components.values() if len(m) > 1), key=lambda m: m[0])


def test_components_equal_those_of_every_verified_candidate_pair() -> None:
    texts = _mixed(3000, seed=4)
    for threshold, share in ((0.7, 0.3), (0.5, None)):
        groups = duplicate_groups(texts, threshold=threshold, common_share=share)
        assert len(groups.groups) > 50 and max(len(g) for g in groups.groups) > 20
        assert groups.groups == _reference_groups(texts, threshold, groups.common)
        members = {m for g in groups.groups for m in g}
        distinct_members = {groups.exact_key[m] for m in members}
        assert 0 < groups.near_pairs < len(distinct_members)  # a spanning forest: one link per join


def test_vectorized_shingles_and_signatures_equal_the_per_text_ones() -> None:
    extra = ["", "ab", "abc", "abcd", "日本語のテキスト", "straße ß", "😀 ok 😀"]
    texts = [normalize_text(t) for t in _mixed(800, seed=9) + extra]  # what the linker shingles
    vocabulary = ShingleVocabulary(64, 3)
    indptr, ids = encode_texts(texts, vocabulary)
    words = {i: s for s, i in vocabulary.ids.items()}
    for t, text in enumerate(texts):
        got = ids[indptr[t] : indptr[t + 1]]
        assert (np.diff(got) > 0).all()  # sorted, distinct
        assert {words[i] for i in got.tolist()} == shingles(text)
    reference = signatures([ids[indptr[t] : indptr[t + 1]].tolist() for t in range(len(texts))], vocabulary)
    assert (signatures_csr(indptr, ids, vocabulary) == reference).all()


def test_band_keys_make_the_same_buckets_as_the_band_rows() -> None:
    texts = [normalize_text(t) for t in _mixed(1500, seed=2)]
    vocabulary = ShingleVocabulary(128, 1)
    sigs = signatures([vocabulary.encode(shingles(t)) for t in texts], vocabulary)
    bands, rows = lsh_bands(0.55, 128)
    keys = band_keys(sigs, bands, rows)
    found = set()
    for band in range(bands):
        column = keys[:, band]
        for value in np.unique(column):
            members = np.flatnonzero(column == value).tolist()
            found |= {(a, b) for i, a in enumerate(members) for b in members[i + 1 :]}
    expected = {(int(a), int(b)) for a, b in band_pairs(sigs, bands, rows)}
    assert expected and found == expected
