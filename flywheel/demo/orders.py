"""order-extraction (extraction): a customer message -> the order details as a JSON object.

Every value in a correct answer is copied verbatim from the message (quantities are written as digits),
so a later stage can measure hallucination by substring checks.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from flywheel.demo.common import Example, assistant_message, email_for, person, phone
from flywheel.demo.text import compose, pick_style, render
from flywheel.demo.workload import DemoWorkload, cut_text

FIELDS = ("order_id", "customer_name", "email", "phone", "items", "delivery_city")
NULLABLE = {"type": ["string", "null"]}
ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {**NULLABLE, "description": "Existing order reference like ORD-123456, if given"},
        "customer_name": {**NULLABLE, "description": "Full name of the customer as written"},
        "email": {**NULLABLE, "description": "Customer email address"},
        "phone": {**NULLABLE, "description": "Customer phone number as written"},
        "items": {
            "type": "array",
            "description": "Products the customer wants; empty when none are named",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "quantity": {"type": "integer", "minimum": 1}},
                "required": ["sku", "quantity"],
                "additionalProperties": False,
            },
        },
        "delivery_city": {**NULLABLE, "description": "City the order must be delivered to"},
    },
    "required": list(FIELDS),
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "order_details", "strict": True, "schema": ORDER_SCHEMA},
}

SYSTEM_PROMPT = (
    "You are the order intake assistant of Northwind Wholesale. Customers and shop owners write to the "
    "orders inbox in free text: new orders, changes to existing orders, delivery instructions and contact "
    "updates. Extract the order details from the customer's message into the JSON schema you are given.\n\n"
    "Field rules:\n"
    "- order_id: the existing order reference, format ORD- followed by six digits. Null for new orders.\n"
    "- customer_name: the customer's full name exactly as written (keep accents). Null if not given.\n"
    "- email / phone: the customer's contact details exactly as written, without reformatting. Null if "
    "absent.\n"
    "- items: one entry per product with its SKU exactly as written (e.g. SKU-10442 or TR-2291-BK) and "
    "the quantity as an integer. If no quantity is stated for a SKU, do not guess: leave the SKU out.\n"
    "- delivery_city: the city the goods must be delivered to. Ignore cities mentioned for other reasons "
    "(previous deliveries, where the customer travels). Null if not stated.\n\n"
    "Never invent values: every value you output must appear in the message. Do not correct typos in "
    "names, SKUs or addresses. Do not add fields. If the message is not about an order, return all fields "
    "null and an empty items list.\n\n"
    "Example\nMessage: Hi, Jan Novak here. Please send 3 x SKU-20031 and 1 x SKU-77812 to Brno. "
    "Questions: jan.novak@example.org\n"
    'Output: {"order_id":null,"customer_name":"Jan Novak","email":"jan.novak@example.org","phone":null,'
    '"items":[{"sku":"SKU-20031","quantity":3},{"sku":"SKU-77812","quantity":1}],"delivery_city":"Brno"}'
)

CITIES = (
    "Austin",
    "Berlin",
    "Lyon",
    "Manchester",
    "Toronto",
    "Rotterdam",
    "Porto",
    "Kraków",
    "Denver",
    "Seattle",
    "Dublin",
    "Milan",
    "Gothenburg",
    "Valencia",
    "Leeds",
    "Chicago",
    "Munich",
    "Antwerp",
    "Vancouver",
    "Edinburgh",
    "Boston",
    "Zürich",
    "Copenhagen",
    "Nantes",
    "Bristol",
    "Phoenix",
    "Graz",
    "Tampere",
    "Bilbao",
    "Utrecht",
)
INTRO = (
    "This is {name}.",
    "My name is {name}.",
    "{name} here.",
    "{name} from the front desk.",
    "I'm {name} and I manage the shop.",
)
ORDER_REF_ADD = (
    "Regarding order {order_id}: please add {items}.",
    "About my order {order_id}, can you add {items}?",
    "Order ref {order_id}. Please change it to {items}.",
    "I placed {order_id} last week and need {items} on top.",
)
ORDER_REF_ONLY = (
    "Question about order {order_id}.",
    "Re: {order_id}",
    "This is about my order {order_id}.",
    "My order number is {order_id}.",
)
NEW_ORDER = (
    "I'd like to order {items}.",
    "Please send me {items}.",
    "We need {items} for the shop.",
    "Can I get {items}?",
    "New order: {items}.",
    "Could you ship {items} this week?",
)
ITEM_FORMS = (
    "{q} x {sku}",
    "{q} units of {sku}",
    "{sku} (qty {q})",
    "{q}x {sku}",
    "{q} pcs {sku}",
    "{sku} x{q}",
)
CITY = (
    "Delivery to {city} please.",
    "Ship everything to our {city} store.",
    "It needs to go to {city}.",
    "Deliver to the {city} warehouse.",
    "Please deliver in {city}.",
    "Destination: {city}.",
)
DISTRACTOR = (
    "(last time it went to {old_city} by mistake)",
    "I'm travelling to {old_city} next week, but the address stays the same.",
    "Not the {old_city} address please.",
)
EMAIL = (
    "You can reach me at {email}.",
    "My email is {email}",
    "Email: {email}",
    "Confirmation to {email} please.",
    "my email changed to {email}",
)
PHONE = (
    "Call me on {phone} if there are questions.",
    "Phone: {phone}",
    "Mobile {phone}",
    "Driver can call {phone} on arrival.",
)
OPENERS = ("Hi,", "Hello,", "Good morning,", "Hi team,", "Dear Northwind,", "")
STATUS_ONLY = (
    "When can I expect delivery?",
    "Can you confirm it's on the way?",
    "Has it shipped?",
    "Is everything in stock?",
)
SIGN = ("Thanks,\n{name}", "Best regards,\n{name}", "Cheers, {name}", "— {name}")


def _sku(rng: random.Random) -> str:
    if rng.random() < 0.65:
        return f"SKU-{rng.randint(10000, 99999)}"
    letters = "".join(rng.choice("ABCDEFGHKLMNPRSTVW") for _ in range(2))
    return f"{letters}-{rng.randint(1000, 9999)}-{rng.choice(('BK', 'WH', 'RD', 'L', 'XL', 'S', 'GR'))}"


class OrderExtraction(DemoWorkload):
    workload_id = "order-extraction"
    task = "extraction"
    pii_kinds = ("card",)  # emails and phones are fields of this task: planting more would change the answer
    malformed_kinds = ("invalid_json", "schema_violation")

    def sample(self, rng: random.Random) -> Example:
        first, last = person(rng)
        name = f"{first} {last}" if rng.random() < 0.85 else None
        email = (
            (email_for(rng, first, last) if rng.random() < 0.8 else email_for(rng))
            if rng.random() < 0.6
            else None
        )
        tel = phone(rng) if rng.random() < 0.45 else None
        order_id = f"ORD-{rng.randint(100000, 999999)}" if rng.random() < 0.4 else None
        count = rng.choices((0, 1, 2, 3), weights=(8, 47, 30, 15))[0]
        if order_id is None and count == 0:
            count = 1
        items = [
            {
                "sku": _sku(rng),
                "quantity": rng.choices(range(1, 13), weights=(30, 20, 12, 8, 6, 4, 3, 2, 2, 4, 1, 3))[0],
            }
            for _ in range(count)
        ]
        city = rng.choice(CITIES) if rng.random() < 0.7 else None
        values: dict[str, Any] = {
            "name": name or "",
            "email": email or "",
            "phone": tel or "",
            "order_id": order_id or "",
            "city": city or "",
        }
        forms = [rng.choice(ITEM_FORMS) for _ in items]
        item_text = [
            f.format(q=item["quantity"], sku=item["sku"]).replace(
                " units", " unit" if item["quantity"] == 1 else " units"
            )
            for f, item in zip(forms, items, strict=True)
        ]
        values["items"] = (
            ", ".join(item_text[:-1]) + (" and " if len(item_text) > 1 else "") + item_text[-1]
            if item_text
            else ""
        )
        parts = [rng.choice(OPENERS)]
        name_in_intro = name is not None and rng.random() < 0.6
        if name_in_intro:
            parts.append(rng.choice(INTRO))
        if order_id and items:
            parts.append(rng.choice(ORDER_REF_ADD))
        elif order_id:
            parts.extend([rng.choice(ORDER_REF_ONLY), rng.choice(STATUS_ONLY)])
        else:
            parts.append(rng.choice(NEW_ORDER))
        if city:
            parts.append(rng.choice(CITY))
            if rng.random() < 0.08:
                values["old_city"] = rng.choice([c for c in CITIES if c != city])
                parts.append(rng.choice(DISTRACTOR))
        contact = [rng.choice(EMAIL)] if email else []
        contact += [rng.choice(PHONE)] if tel else []
        rng.shuffle(contact)
        parts.extend(contact)
        if name is not None and not name_in_intro:
            parts.append(rng.choice(SIGN))
        text = render(rng, compose(rng, parts, (" ", " ", "\n")), values, pick_style(rng))
        answer = {
            "order_id": order_id,
            "customer_name": name,
            "email": email,
            "phone": tel,
            "items": items,
            "delivery_city": city,
        }
        protected = [v for v in (order_id, name, email, tel, city) if v] + [i["sku"] for i in items]
        protected += item_text
        pii = [{"kind": k, "value": v, "origin": "task"} for k, v in (("email", email), ("phone", tel)) if v]
        return Example(text=text, answer=answer, slice=f"items={count}", protected=protected, pii=pii)

    def request(self, rng: random.Random, text: str, model: str, stream: bool) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}],
            "response_format": RESPONSE_FORMAT,
            "temperature": 0,
            "max_tokens": 400,
        }
        if stream:
            request.update(stream=True, stream_options={"include_usage": True})
        return request

    def answer_message(self, rng: random.Random, answer: Any) -> tuple[dict[str, Any], str]:
        return assistant_message(json.dumps(answer, ensure_ascii=False, separators=(",", ":"))), "stop"

    def wrong(self, rng: random.Random, example: Example) -> tuple[Any, dict[str, Any]]:
        gold = example.answer
        answer = copy.deepcopy(gold)
        options = ["hallucinated_city", "hallucinated_name"]
        if gold["items"]:
            options += ["wrong_quantity", "wrong_sku", "missed_item"]
        if gold["email"]:
            options.append("missed_email")
        if gold["order_id"]:
            options.append("wrong_order_id")
        kind = rng.choice(options)
        if kind == "hallucinated_city":
            field = "delivery_city"
            answer[field] = rng.choice([c for c in CITIES if c not in example.text])
        elif kind == "hallucinated_name":
            field = "customer_name"
            first, last = person(rng)
            answer[field] = f"{first} {last}" if f"{first} {last}" != gold[field] else f"{last} {first}"
        elif kind == "wrong_quantity":
            field = "items"
            item = rng.choice(answer["items"])
            item["quantity"] += rng.choice((1, 2, 10))
        elif kind == "wrong_sku":
            field = "items"
            item = rng.choice(answer["items"])
            sku = item["sku"]
            digit = next(i for i in range(len(sku) - 1, -1, -1) if sku[i].isdigit())
            item["sku"] = sku[:digit] + str((int(sku[digit]) + 1) % 10) + sku[digit + 1 :]
        elif kind == "missed_item":
            field = "items"
            answer["items"].pop(rng.randrange(len(answer["items"])))
        elif kind == "missed_email":
            field = "email"
            answer["email"] = None
        else:
            field = "order_id"
            answer["order_id"] = f"ORD-{rng.randint(100000, 999999)}"
        return answer, {"kind": kind, "field": field, "answer": answer, "correct": gold}

    def malformed(self, rng: random.Random, example: Example) -> tuple[dict[str, Any], str, dict[str, Any]]:
        gold = example.answer
        compact = json.dumps(gold, ensure_ascii=False, separators=(",", ":"))
        kind = rng.choice(self.malformed_kinds)
        if kind == "invalid_json":
            variant = rng.choice(("fenced", "prose", "trailing_comma", "single_quotes"))
            content = {
                "fenced": f"```json\n{json.dumps(gold, ensure_ascii=False, indent=2)}\n```",
                "prose": f"Here are the extracted order details: {compact}",
                "trailing_comma": compact[:-1] + ",}",
                "single_quotes": str(gold),
            }[variant]
        else:
            bad = copy.deepcopy(gold)
            variant = rng.choice(("quantity_as_string", "missing_field", "extra_field", "items_not_list"))
            if variant == "quantity_as_string" and bad["items"]:
                bad["items"][0]["quantity"] = str(bad["items"][0]["quantity"])
            elif variant == "missing_field":
                del bad[rng.choice(("phone", "delivery_city", "customer_name"))]
            elif variant == "extra_field" or not bad["items"]:
                variant = "extra_field"
                bad["notes"] = "customer seems in a hurry"
            else:
                bad["items"] = bad["items"][0]
            content = json.dumps(bad, ensure_ascii=False, separators=(",", ":"))
        detail = {"kind": kind, "variant": variant, "content": content}
        return assistant_message(content), "stop", detail

    def truncated(self, rng: random.Random, example: Example) -> dict[str, Any]:
        message, _ = self.answer_message(rng, example.answer)
        return assistant_message(cut_text(rng, message["content"]))

    def refusal(self, rng: random.Random, text: str) -> dict[str, Any]:
        # Structured outputs report refusals in `message.refusal` with null content; older clients put it
        # in the content. Both are seen in real logs.
        if rng.random() < 0.5:
            return assistant_message(None, refusal=text)
        return assistant_message(text)
