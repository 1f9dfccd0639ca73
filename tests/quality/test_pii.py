import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flywheel.quality.pii import build_patterns, luhn_ok, restore, scrub, scrub_record


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to maria.gonzalez+shop@outlook.com please", "email"),
        ("call +1 (415) 555 0119 today", "phone"),
        ("my number is 212-555-0157", "phone"),
        ("Phone: +44 7700 900676", "phone"),
        ("ring 415.555.0121", "phone"),
        ("card 4111 1111 1111 1111 exp 09/27", "card"),
        ("amex 3782-822463-10005", "card"),
        ("IBAN DE89 3704 0044 0532 0130 00", "iban"),
        ("pay to GB82WEST12345698765432", "iban"),
        ("my SSN is 123-45-6789", "national_id"),
        ("NI number AB 12 34 56 C", "national_id"),
        ("passport no: X1234567", "national_id"),
        ("logged in from 192.168.10.254.", "ip"),
        ("v6 2001:db8::1 blocked", "ip"),
    ],
)
def test_each_type_becomes_a_typed_placeholder(text: str, kind: str) -> None:
    scrubbed, counts = scrub(text)
    assert counts == {kind: 1}
    assert f"<{kind.upper()}_1>" in scrubbed


@pytest.mark.parametrize(
    "text",
    [
        "order ORD-123456 and SKU-20031 x3",
        "charged €1,234.56 on 2025-06-02 14:00",
        "error 80070005 in app v4.12.0",
        "card 4111 1111 1111 1112 (fails Luhn)",
        "IBAN DE89 3704 0044 0532 0130 02 (bad checksum)",
        "meet at 10:30:00, room 555 1234",
        "call me tomorrow between 9 and 11",
    ],
)
def test_look_alikes_are_left_alone(text: str) -> None:
    assert scrub(text) == (text, {})


def test_same_value_same_placeholder_across_a_record() -> None:
    messages = [
        {"role": "system", "content": "Extract the order."},
        {"role": "user", "content": "I am Ana, ana@x.io or ANA@X.IO, phone 212-555-0157; backup bo@y.io"},
    ]
    target = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c1", "type": "function",
             "function": {"name": "callback", "arguments": '{"phone": "212 555 0157", "email": "ana@x.io"}'}}
        ],
    }  # fmt: skip
    record = scrub_record(messages, target)
    user = record.messages[1]["content"]
    assert user == "I am Ana, <EMAIL_1> or <EMAIL_1>, phone <PHONE_1>; backup <EMAIL_2>"
    arguments = record.target["tool_calls"][0]["function"]["arguments"]
    assert arguments == '{"phone": "<PHONE_1>", "email": "<EMAIL_1>"}'
    assert record.counts == {"email": 2, "phone": 1}
    assert restore(arguments, record.originals) == '{"phone": "212-555-0157", "email": "ana@x.io"}'
    assert messages[1]["content"].startswith("I am Ana, ana@x.io"), "the input is not mutated"


def test_custom_patterns_and_type_selection() -> None:
    patterns = build_patterns(["email"], {"employee_id": r"\bEMP-\d{5}\b"})
    scrubbed, counts = scrub("EMP-12345 (emp@corp.com) called 212-555-0157", patterns)
    assert scrubbed == "<EMPLOYEE_ID_1> (<EMAIL_1>) called 212-555-0157"
    assert counts == {"employee_id": 1, "email": 1}
    with pytest.raises(ValueError, match="unknown PII types"):
        build_patterns(["passport"])


def test_placeholders_survive_a_second_pass() -> None:
    once, _ = scrub("mail a@b.co, card 4111111111111111")
    assert scrub(once) == (once, {})


def _card(rng: random.Random, length: int) -> str:
    body = "4" + "".join(str(rng.randrange(10)) for _ in range(length - 2))
    return body + next(d for d in "0123456789" if luhn_ok(body + d))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), length=st.sampled_from([15, 16, 19]), sep=st.sampled_from(["", " ", "-"]))
def test_any_luhn_valid_card_is_scrubbed(seed: int, length: int, sep: str) -> None:
    digits = _card(random.Random(seed), length)
    if len(set(digits)) == 1:
        return
    shown = sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))
    scrubbed, counts = scrub(f"I paid with {shown}, thanks")
    assert scrubbed == "I paid with <CARD_1>, thanks"
    assert counts == {"card": 1}


def test_hints_only_skip_patterns_that_cannot_match() -> None:
    """The cheap pre-check (a digit, "@", ":") never changes what is scrubbed."""
    import dataclasses

    from tests.quality.pii_samples import SAMPLES

    hinted = build_patterns()
    assert all(p.hint is not None for p in hinted)
    plain = tuple(dataclasses.replace(p, hint=None) for p in hinted)
    rng = random.Random(3)
    texts = [text for text, _ in SAMPLES]
    alphabet = "ab@:.-+ 0123456789٣()XY\n`"
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(3000)]
    texts += ["mail me: a.b@example.org", "fe80::1 and 2001:db8::ff00:42:8329", "no pii here at all"]
    for text in texts:
        assert scrub(text, hinted) == scrub(text, plain), text
