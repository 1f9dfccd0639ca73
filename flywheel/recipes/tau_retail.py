"""tau-bench retail tasks as multi-turn OpenAI chat-completions logs of a customer-service agent.

Each task (a user scenario plus the gold write actions that solve it) becomes one conversation that an
agent following the policy would have: the system prompt is the policy (env/wiki.md) and every request
carries the 16 tools. The user opens with who they are (email, or name and zip, from the instruction)
and their first request; the agent authenticates (find_user_id_by_*), reads the profile
(get_user_details: the payment method ids), reads each order and, for exchanges and item changes, the
product (the new item ids), lists the action's details and asks for a yes, makes the gold call, and
reports the outcome; the user then brings the next request, or says that is all. Every tool call is
executed for real against the task's own copy of the database (tau_env), so tool results are real.

One logged request per assistant step: the conversation so far, and the answer the agent gave (a tool
call, or text to the user). There is no LLM here, so the user's words are a deterministic first-person
template of the task (seeded choice among a few phrasings); the identifying details (email or name +
zip, order ids, items and options, payment methods as a customer names them) are the task's.

Metadata: task id and index, the assistant step's index (`turn`), its `step` kind (auth, lookup,
confirm, action, report, closing), `gold_action` (the call is one of the task's gold actions),
`reward` 1.0 (the trajectory reaches the gold database state), and the step's answer as `label`
([{"name", "arguments"}] for a call, the text for a reply), which curation reads as gold.
"""

from __future__ import annotations

import hashlib
import random
import re
import statistics
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from flywheel.recipes import tau_phrases as phrases
from flywheel.recipes.tau_env import Action, Task, TauDataError, TauRetail, load_env

MODEL = "gpt-4o-2024-08-06"  # the agent model tau-bench's leaderboard runs used
EPOCH = 1_752_000_000  # the first conversation's start; task i starts i * TASK_GAP_S later
TASK_GAP_S = 600
STEP_GAP_S = 9
CLIENT_ID = "tau-retail"
ITEM_ACTIONS = frozenset(("exchange_delivered_order_items", "modify_pending_order_items"))
IDENTITY_RE = re.compile(
    r"Your name is (?P<name>[^.]+?) and your (?:zip code is (?P<zip>\d{5})|email is (?P<email>\S+?))\.\s"
)


@dataclass
class Conversation:
    """One task's dialogue as it is built: the messages so far and a log record per assistant step."""

    env: TauRetail
    task: Task
    data: dict[str, Any]
    model: str = MODEL
    messages: list[dict[str, Any]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # order/product ids whose current state was read

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})

    def say(self, text: str, step: str) -> None:
        message = {"role": "assistant", "content": text}
        self._log(message, "stop", step, label=text)
        self.messages.append(message)

    def call(self, name: str, arguments: dict[str, Any], step: str, gold: bool = False) -> str:
        """Log the agent's call, run it against the task's database, and add the real result."""
        turn = len(self.records)
        call_id = "call_" + hashlib.sha256(f"{self.task.index}:{turn}".encode()).hexdigest()[:24]
        function = {"name": name, "arguments": orjson.dumps(arguments).decode()}
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": function}],
        }
        self._log(message, "tool_calls", step, label=[{"name": name, "arguments": arguments}], gold=gold)
        result = self.env.invoke(self.data, name, arguments)
        self.messages += [message, {"role": "tool", "tool_call_id": call_id, "content": result}]
        return result

    def _log(self, message: dict[str, Any], finish: str, step: str, label: Any, gold: bool = False) -> None:
        turn = len(self.records)
        at = EPOCH + self.task.index * TASK_GAP_S + turn * STEP_GAP_S
        request = {
            "model": self.model,
            "messages": [{"role": "system", "content": self.env.policy}, *self.messages],
            "tools": self.env.tools,
        }
        metadata = {
            "task_id": f"tau-retail-train-{self.task.index}",
            "task_index": self.task.index,
            "user_id": self.task.user_id,
            "turn": turn,
            "step": step,
            "gold_action": gold,
            "reward": 1.0,
            "label": label,
        }
        self.records.append(
            {
                "request": request,
                "response": {
                    "id": f"chatcmpl-tau-{self.task.index}-{turn}",
                    "object": "chat.completion",
                    "created": at,
                    "model": self.model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                },
                "timestamp": at,
                "client_id": CLIENT_ID,
                "metadata": metadata,
            }
        )


def identity(task: Task) -> dict[str, str]:
    """{"name", "email"} or {"name", "zip"} as the instruction gives them to the simulated user."""
    match = IDENTITY_RE.search(task.instruction)
    if match is None:
        raise TauDataError(f"{task.where}: instruction does not say the user's name and email or zip code")
    return {k: v for k, v in match.groupdict().items() if v}


def conversation(env: TauRetail, task: Task, model: str = MODEL, seed: int = 0) -> list[dict[str, Any]]:
    """The task's log records, one per assistant step, with every tool run for real."""
    talk = Conversation(env, task, env.fresh_database(), model)
    rng = random.Random(f"{seed}:{task.index}")
    who = identity(task)
    user = talk.data["users"].get(task.user_id)
    if user is None:
        raise TauDataError(f"{task.where}: user_id {task.user_id!r} is not in users.json")
    if not task.actions:
        raise TauDataError(f"{task.where}: task has no actions")
    talk.user(phrases.opening(rng, who, phrases.request(task.actions[0], talk.data, user)))
    _authenticate(talk, who, user)
    for position, action in enumerate(task.actions):
        if position:
            talk.user(phrases.follow_up(rng, phrases.request(action, talk.data, user)))
        _handle(talk, action, user, rng)
    talk.user(phrases.goodbye(rng))
    talk.say(phrases.closing(rng), "closing")
    return talk.records


def _authenticate(talk: Conversation, who: dict[str, str], user: dict[str, Any]) -> None:
    if "email" in who:
        found = talk.call("find_user_id_by_email", {"email": who["email"]}, "auth")
    else:
        first, last = user["name"]["first_name"], user["name"]["last_name"]
        found = talk.call(
            "find_user_id_by_name_zip", {"first_name": first, "last_name": last, "zip": who["zip"]}, "auth"
        )
    if found != talk.task.user_id:
        raise TauDataError(f"{talk.task.where}: authentication found {found!r}, not {talk.task.user_id!r}")
    talk.call("get_user_details", {"user_id": found}, "lookup")


def _handle(talk: Conversation, action: Action, user: dict[str, Any], rng: random.Random) -> None:
    """Read what the action needs, ask for a yes, make the gold call, report what it did."""
    order_id = action.kwargs.get("order_id")
    if isinstance(order_id, str) and order_id not in talk.seen:
        talk.call("get_order_details", {"order_id": order_id}, "lookup")
        talk.seen.add(order_id)
    if action.name in ITEM_ACTIONS:
        for product_id in _products(talk.data, action):
            if product_id not in talk.seen:
                talk.call("get_product_details", {"product_id": product_id}, "lookup")
                talk.seen.add(product_id)
    talk.say(phrases.confirmation(action, talk.data, user), "confirm")
    talk.user(phrases.yes(rng))
    result = talk.call(action.name, dict(action.kwargs), "action", gold=True)
    talk.records[-1]["metadata"]["action_error"] = result if result.startswith("Error") else None
    talk.say(phrases.report(action, result, user), "report")


def _products(data: dict[str, Any], action: Action) -> list[str]:
    """The product ids of the order items an item action changes, in order, once each."""
    order = data["orders"].get(action.kwargs.get("order_id"), {})
    by_item = {item["item_id"]: item["product_id"] for item in order.get("items", [])}
    ids = [by_item[i] for i in action.kwargs.get("item_ids", []) if i in by_item]
    return list(dict.fromkeys(ids))


def iter_logs(
    env: TauRetail, limit: int | None = None, model: str = MODEL, seed: int = 0
) -> Iterator[dict[str, Any]]:
    for task in env.tasks[:limit]:
        yield from conversation(env, task, model, seed)


def write_logs(
    data_dir: Path, out_path: Path, limit: int | None = None, model: str = MODEL, seed: int = 0
) -> int:
    """Write the first `limit` tasks (all by default) as JSONL log lines; returns the line count."""
    env = load_env(Path(data_dir))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    lines = 0
    with out_path.open("wb") as handle:
        for record in iter_logs(env, limit, model, seed):
            handle.write(orjson.dumps(record) + b"\n")
            lines += 1
    return lines


def summarize(path: Path) -> dict[str, Any]:
    """Figures of a written log file: conversations, steps per conversation, tool-call vs text
    share, and prompt lengths in tokens counted with the model's tokenizer (tools included)."""
    from flywheel.costs.tokens import counter_for

    steps: dict[int, int] = {}
    tool_calls, prompt_tokens, method = 0, [], None
    with Path(path).open("rb") as handle:
        for line in handle:
            record = orjson.loads(line)
            index = record["metadata"]["task_index"]
            steps[index] = steps.get(index, 0) + 1
            tool_calls += record["response"]["choices"][0]["finish_reason"] == "tool_calls"
            counter = counter_for(record["request"]["model"])
            prompt_tokens.append(counter.request(record["request"]))
            method = counter.method
    total = sum(steps.values())
    if not total:
        raise TauDataError(f"{path}: no log lines")
    ordered = sorted(prompt_tokens)
    return {
        "conversations": len(steps),
        "logged_steps": total,
        "steps_per_conversation": {
            "min": min(steps.values()),
            "median": statistics.median(steps.values()),
            "max": max(steps.values()),
        },
        "tool_call_share": round(tool_calls / total, 4),
        "text_share": round(1 - tool_calls / total, 4),
        "prompt_tokens": {
            "median": statistics.median(ordered),
            "p90": ordered[int(0.9 * (total - 1))],
            "max": ordered[-1],
            "method": method,
        },
    }
