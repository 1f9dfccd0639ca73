import itertools
import random

from flywheel.quality.dedup import (
    duplicate_groups,
    jaccard,
    near_duplicate_pairs,
    normalize_text,
    numbers,
    shingles,
)

BASE = [
    "My package never arrived and the tracking has not moved since Monday.",
    "How do I change the delivery address for an order I placed this morning?",
    "The app crashes every time I open my cart on my Pixel 7.",
    "I was charged twice for the same order, please refund one of the payments.",
    "Can I return shoes that do not fit if I already wore them outside once?",
]


def test_normalization_ignores_case_punctuation_emoji_and_spacing() -> None:
    assert normalize_text("Sorry,   nevermind :) 🙂") == normalize_text("sorry nevermind")
    assert normalize_text("call <PHONE_1>!") == "call <phone_1>"
    assert numbers(normalize_text("ORD-123 x2")) == ("123", "2")


def test_exact_and_near_groups_keep_input_order() -> None:
    texts = [
        BASE[0],
        BASE[1],
        BASE[0].upper() + "  ",  # exact after normalization
        BASE[1].replace("address", "adress").replace("morning", "mornign"),  # typos
        BASE[2],
        "Thanks!",
    ]
    groups = duplicate_groups(texts)
    assert groups.groups == [[0, 2], [1, 3]]
    assert groups.exact_key[0] == groups.exact_key[2] != groups.exact_key[3]


def test_different_numbers_are_different_requests() -> None:
    texts = [
        "hello, can you tell me where my order ORD-123456 is right now please",
        "hello, can you tell me where my order ORD-123457 is right now please",
    ]
    assert jaccard(shingles(texts[0]), shingles(texts[1])) > 0.7
    assert duplicate_groups(texts).groups == []


def test_lsh_finds_every_pair_the_exact_all_pairs_search_finds() -> None:
    rng = random.Random(5)
    words = [
        "order",
        "refund",
        "card",
        "delivery",
        "app",
        "login",
        "password",
        "invoice",
        "address",
        "return",
        "shoes",
        "jacket",
        "late",
    ]
    texts = []
    for i in range(300):
        if i % 10 == 9:
            source = list(texts[rng.randrange(len(texts))])
            source[rng.randrange(len(source))] = rng.choice(words)  # one-word edit of an earlier text
            texts.append(source)
        else:
            texts.append([rng.choice(words) for _ in range(rng.randint(6, 14))])
    texts = [" ".join(t) for t in texts]
    sets = [shingles(t) for t in texts]
    expected = {
        (a, b)
        for a, b in itertools.combinations(range(len(texts)), 2)
        if jaccard(sets[a], sets[b]) >= 0.7 and numbers(texts[a]) == numbers(texts[b])
    }
    found = {(a, b) for a, b, _ in near_duplicate_pairs(texts, threshold=0.7)}
    assert found <= expected, "every reported pair is verified exactly"
    assert len(found) >= 0.97 * len(expected)
    assert len(expected) >= 25
