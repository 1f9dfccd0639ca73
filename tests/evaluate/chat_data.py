"""Support-chat answers of a teacher, a good student's rewording of each, and the examples built
from them (shared by the chat metric and gate tests)."""

from __future__ import annotations

from flywheel.records import Example

# (question, the teacher's answer, a good student's answer: same meaning, its own words)
QA = [
    (
        "When will my parcel ship?",
        "Your parcel ships today and should arrive within three business days.",
        "The parcel is shipped today and will arrive in about three business days.",
    ),
    (
        "How do I reset my password?",
        "To reset your password, open Settings, choose Security and click Reset password.",
        "Go to Settings, then Security, and click Reset password to reset it.",
    ),
    (
        "I was charged twice.",
        "We are sorry about the double charge; the duplicate payment will be refunded within 5 days.",
        "Sorry for charging you twice; we will refund the duplicate payment within five days.",
    ),
    (
        "What are your opening hours?",
        "Our store is open from 9am to 6pm Monday to Saturday and closed on Sundays.",
        "We're open 9am to 6pm Monday through Saturday and closed on Sunday.",
    ),
    (
        "Can I cancel my subscription?",
        "You can cancel your subscription at any time from the Billing page; no fee applies.",
        "You may cancel the subscription anytime on the Billing page at no cost.",
    ),
    (
        "What does the warranty cover?",
        "The warranty covers manufacturing defects for two years from the date of purchase.",
        "Manufacturing defects are covered by the warranty for 2 years after purchase.",
    ),
    (
        "Is shipping free?",
        "Orders over $50 ship for free within the continental US.",
        "Shipping is free in the continental US for orders above $50.",
    ),
    (
        "My item arrived broken.",
        "Please send a photo of the damaged item and we will send a replacement.",
        "Send us a picture of the damaged product and we'll ship you a replacement.",
    ),
    (
        "Do you ship to Canada?",
        "Yes, we ship to Canada; delivery takes 5 to 7 business days and duties are included.",
        "We do ship to Canada: it takes 5-7 business days, with duties included.",
    ),
    (
        "How do I change my delivery address?",
        "You can change the delivery address on the order page until the parcel has shipped.",
        "Until the order ships, the delivery address can be changed on the order page.",
    ),
    (
        "Can I pay with PayPal?",
        "Yes, we accept PayPal as well as all major credit cards at checkout.",
        "PayPal is accepted at checkout, along with all major credit cards.",
    ),
    (
        "How long do refunds take?",
        "Refunds are issued to the original payment method within 5 to 10 business days.",
        "You will get the refund on your original payment method in 5-10 business days.",
    ),
    # non-Latin answers: the student writes what the teacher wrote
    (
        "包裹什么时候发货？",
        "您的包裹今天发货，预计三个工作日内送达。",
        "您的包裹今天发货，预计三个工作日内送达。",
    ),
    (
        "Когда придёт заказ?",
        "Ваш заказ отправлен сегодня и прибудет через три рабочих дня.",
        "Ваш заказ отправлен сегодня и прибудет через три рабочих дня.",
    ),
    (
        "返品できますか？",
        "商品到着後30日以内であれば返品できます。",
        "商品到着後30日以内であれば返品できます。",
    ),
    ("متى يصل طلبي؟", "سيصل طلبك خلال ثلاثة أيام عمل.", "سيصل طلبك خلال ثلاثة أيام عمل."),
]
CANNED = "Thank you for reaching out! A member of our team will get back to you shortly."


def chat_examples(copies: int = 4) -> list[Example]:
    """Each question `copies` times (different requests, the same answer), teacher answers as targets."""
    out = []
    for copy in range(copies):
        for i, (question, answer, _) in enumerate(QA):
            out.append(
                Example(
                    example_id=f"q{i}-{copy}",
                    workload_id="faq",
                    messages=[{"role": "user", "content": f"{question} (order {1000 + copy})"}],
                    target={"role": "assistant", "content": answer},
                    split="eval",
                    interaction_id=f"ix-q{i}-{copy}",
                )
            )
    return out


def index_of(example: Example) -> int:
    return int(example.example_id.split("-")[0][1:])


def good_answer(example: Example) -> str:
    return QA[index_of(example)][2]


def canned_answer(example: Example) -> str:
    return CANNED


def shuffled_answer(example: Example) -> str:
    """Another question's (good) answer: fluent, on-domain, wrong."""
    return QA[(index_of(example) + 1) % len(QA)][2]
