"""What the simulated customer and the agent say in a tau-bench retail conversation (tau_retail).

No LLM plays the user here, so the words are templates: a seeded choice among a few phrasings, filled
with the task's own details as the database states them when the request is made. The customer names
things the way a customer would (the product and its options, "my Visa ending in 1234"; a payment id
only where two of their methods would read the same); the agent's confirmation lists what the policy
asks it to list (order, items, new item ids and prices, refund or charge and where it goes).
"""

from __future__ import annotations

import random
from typing import Any

import orjson

from flywheel.recipes.tau_env import Action

GREETINGS = ("Hi,", "Hello,", "Hi there.", "Good morning,", "Hey,")
YES = ("Yes, please go ahead.", "Yes.", "Yes, that's correct, please proceed.", "yes", "Yes, confirmed.")
MORE = ("Yes, one more thing.", "Actually, yes.", "There's something else too.", "Yes, also:")
BYE = ("No, that's all. Thanks!", "That's everything, thank you.", "No, thanks. Bye!", "Nope, all set.")
CLOSINGS = (
    "You're welcome! Have a great day.",
    "Glad I could help. Have a nice day!",
    "Thank you for contacting us. Goodbye!",
)
ANYTHING_ELSE = "Is there anything else I can help you with?"
REASONS = {"no longer needed": "I no longer need it", "ordered by mistake": "I ordered it by mistake"}


def opening(rng: random.Random, who: dict[str, str], request: str) -> str:
    if "email" in who:
        me = f"my name is {who['name']} and my email is {who['email']}."
    else:
        me = f"I'm {who['name']}, zip code {who['zip']}."
    return f"{rng.choice(GREETINGS)} {me} {request}"


def follow_up(rng: random.Random, request: str) -> str:
    return f"{rng.choice(MORE)} {request}"


def yes(rng: random.Random) -> str:
    return rng.choice(YES)


def goodbye(rng: random.Random) -> str:
    return rng.choice(BYE)


def closing(rng: random.Random) -> str:
    return rng.choice(CLOSINGS)


# --- the customer's requests --------------------------------------------------------------------------


def request(action: Action, data: dict[str, Any], user: dict[str, Any]) -> str:
    """The customer's words for one gold action, from its arguments and the database."""
    args, name = action.kwargs, action.name
    order_id = args.get("order_id", "")
    pay = payment(user, args.get("payment_method_id", ""), "my")
    if name == "cancel_pending_order":
        reason = REASONS.get(args.get("reason", ""), f"of this: {args.get('reason')}")
        return f"I'd like to cancel order {order_id} because {reason}."
    if name == "return_delivered_order_items":
        items = _order_items(data, order_id, args.get("item_ids", []))
        return f"I want to return the {_and(_names(items))} from order {order_id}. Please refund it to {pay}."
    if name in ("exchange_delivered_order_items", "modify_pending_order_items"):
        verb = "exchange" if name.startswith("exchange") else "change"
        pairs = [_wish(data, old, new) for old, new in _pairs(data, args)]
        return f"For order {order_id}, I'd like to {verb} {_and(pairs)}. Use {pay} for any price difference."
    if name == "modify_pending_order_address":
        return f"For order {order_id}, please change the shipping address to {address(args)}."
    if name == "modify_pending_order_payment":
        return f"For order {order_id}, I'd like to pay with {pay} instead."
    details = ", ".join(f"{k} {v}" for k, v in args.items())
    return f"I need help with this: {name.replace('_', ' ')} ({details})."


def _wish(data: dict[str, Any], old: dict[str, Any], new: dict[str, Any] | None) -> str:
    changed = {k: v for k, v in (new or {}).get("options", {}).items() if old["options"].get(k) != v}
    what = f"the {old['name']} ({options(old['options'])})"
    if new is None or not changed:
        return f"{what} for a new identical one"
    return f"{what} to one with {options(changed)}"


# --- the agent's words --------------------------------------------------------------------------------


def confirmation(action: Action, data: dict[str, Any], user: dict[str, Any]) -> str:
    """The action's details as the policy asks the agent to list them, and the question."""
    args, name = action.kwargs, action.name
    order_id = args.get("order_id", "")
    order = data["orders"].get(order_id, {})
    status, ask = order.get("status", "unknown"), "Do you confirm that I should proceed (yes/no)?"
    if name == "cancel_pending_order":
        paid = _paid(order)
        refund = "; ".join(f"${amount:.2f} back to {payment(user, pm, 'your')}" for pm, amount in paid)
        return (
            f"Order {order_id} is {status}. I can cancel it with the reason '{args.get('reason')}'. "
            f"The refund: {refund or 'nothing was paid'}. {ask}"
        )
    if name == "return_delivered_order_items":
        items = _order_items(data, order_id, args.get("item_ids", []))
        listed = "; ".join(f"{i['name']} ({options(i['options'])}), ${i['price']:.2f}" for i in items)
        total = sum(i["price"] for i in items)
        return (
            f"Order {order_id} is {status}. Return: {listed}. Refund ${total:.2f} to "
            f"{payment(user, args.get('payment_method_id', ''), 'your')}. {ask}"
        )
    if name in ("exchange_delivered_order_items", "modify_pending_order_items"):
        return _item_change(action, data, user, status) + f" {ask}"
    if name == "modify_pending_order_address":
        return f"Order {order_id} is {status}. I'll change its shipping address to {address(args)}. {ask}"
    if name == "modify_pending_order_payment":
        old = ", ".join(payment(user, pm, "your") for pm, _ in _paid(order)) or "none"
        new = payment(user, args.get("payment_method_id", ""), "your")
        return f"Order {order_id} is {status}. I'll change its payment from {old} to {new}. {ask}"
    return f"I'll call {name} with {args}. {ask}"


def _item_change(action: Action, data: dict[str, Any], user: dict[str, Any], status: str) -> str:
    args = action.kwargs
    lines, difference = [], 0.0
    for old, new in _pairs(data, args):
        new = new or {"item_id": "?", "options": {}, "price": old["price"]}
        difference += new["price"] - old["price"]
        lines.append(
            f"{old['name']} ({options(old['options'])}, ${old['price']:.2f}) -> item "
            f"{new['item_id']} ({options(new['options'])}, ${new['price']:.2f})"
        )
    pay = payment(user, args.get("payment_method_id", ""), "your")
    money = (
        f"you pay ${difference:.2f} with {pay}"
        if difference > 0
        else f"${-difference:.2f} is refunded to {pay}"
    )
    once = (
        "this can be done only once per order, after which it can no longer be modified or cancelled"
        if action.name.startswith("modify")
        else "an exchange can be requested only once per order"
    )
    return (
        f"Order {args.get('order_id')} is {status}. Changes: {'; '.join(lines)}. Price difference: "
        f"{money}. Please make sure these are all the items you want to change: {once}."
    )


def report(action: Action, result: str, user: dict[str, Any]) -> str:
    """What the agent tells the customer after the call: the outcome the tool returned."""
    if result.startswith("Error"):
        return f"I'm sorry, I couldn't do that: {result.removeprefix('Error: ')}. {ANYTHING_ELSE}"
    order_id = action.kwargs.get("order_id", "")
    status = _status(result)
    tail = {
        "cancel_pending_order": "The refund goes back to the original payment method (gift cards at once, "
        "otherwise in 5 to 7 business days).",
        "return_delivered_order_items": "You'll receive an email with instructions on how to return "
        "the items.",
        "exchange_delivered_order_items": "You'll receive an email with instructions on how to return the "
        "items; the new ones ship once we receive them.",
    }.get(action.name, "")
    done = f"Done: order {order_id} is now '{status}'." if status else "Done."
    return f"{done} {tail} {ANYTHING_ELSE}".replace("  ", " ")


def _status(result: str) -> str | None:
    try:
        doc = orjson.loads(result)
    except orjson.JSONDecodeError:
        return None
    return doc.get("status") if isinstance(doc, dict) else None


# --- shared pieces ------------------------------------------------------------------------------------


def payment(user: dict[str, Any], method_id: str, owner: str) -> str:
    """How a person names a payment method; with its id where another of theirs reads the same."""
    methods = user.get("payment_methods", {})
    if method_id not in methods:
        return method_id
    spoken = {pm: _spoken(method, owner) for pm, method in methods.items()}
    text = spoken[method_id]
    if owner == "your" or list(spoken.values()).count(text) > 1:
        return f"{text} ({method_id})"  # the agent always names the id it will use
    return text


def _spoken(method: dict[str, Any], owner: str) -> str:
    source = method.get("source")
    if source == "credit_card":
        return (
            f"{owner} {str(method.get('brand', '')).title()} credit card ending in {method.get('last_four')}"
        )
    if source == "paypal":
        return f"{owner} PayPal account"
    if source == "gift_card":
        return f"{owner} gift card"
    return f"{owner} {source}"


def options(values: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in values.items())


def address(args: dict[str, Any]) -> str:
    parts = [
        args.get("address1"),
        args.get("address2"),
        args.get("city"),
        f"{args.get('state', '')} {args.get('zip', '')}".strip(),
        args.get("country"),
    ]
    return ", ".join(str(p) for p in parts if p)


def _order_items(data: dict[str, Any], order_id: str, item_ids: list[str]) -> list[dict[str, Any]]:
    items = data["orders"].get(order_id, {}).get("items", [])
    by_id = {item["item_id"]: item for item in items}
    return [by_id[i] for i in item_ids if i in by_id]


def _names(items: list[dict[str, Any]]) -> list[str]:
    """Item names, with their options where the list would otherwise name two the same."""
    names = [i["name"] for i in items]
    return [
        f"{i['name']} ({options(i['options'])})" if names.count(i["name"]) > 1 else i["name"] for i in items
    ]


def _pairs(data: dict[str, Any], args: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any] | None]]:
    """(old order item, new product variant or None) for each item an exchange/modify changes."""
    olds = _order_items(data, args.get("order_id", ""), args.get("item_ids", []))
    pairs = []
    for old, new_id in zip(olds, args.get("new_item_ids", []), strict=False):
        variants = data["products"].get(old["product_id"], {}).get("variants", {})
        pairs.append((old, variants.get(new_id)))
    return pairs


def _paid(order: dict[str, Any]) -> list[tuple[str, float]]:
    return [
        (p["payment_method_id"], p["amount"])
        for p in order.get("payment_history", [])
        if p.get("transaction_type") == "payment"
    ]


def _and(parts: list[str]) -> str:
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
