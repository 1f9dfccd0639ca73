"""Synthesize: new user inputs for rare slices, written by the teacher from seed examples, then labeled.

New inputs are de-duplicated (exact after normalisation, and near-duplicates by MinHash over character
shingles) against the existing data, the seeds and each other, and marked synthetic.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
from collections.abc import Iterable
from typing import Any

from flywheel.config import WorkloadConfig
from flywheel.records import Example, message_text
from flywheel.teacher.budget import BudgetExhausted
from flywheel.teacher.client import TeacherCallError
from flywheel.teacher.relabel import LabelRun, Progress, label_item
from flywheel.teacher.session import TeacherSession
from flywheel.teacher.structured import InvalidAnswer, with_instruction

MAX_SEEDS_SHOWN = 8
MAX_PER_REQUEST = 25
WORD_RE = re.compile(r"\w+")


def normalize(text: str) -> str:
    return " ".join(WORD_RE.findall(text.casefold()))


class NearDuplicates:
    """Texts seen so far; `add(text)` is False for an exact or near (Jaccard >= threshold) duplicate."""

    def __init__(self, texts: Iterable[str] = (), threshold: float = 0.8, num_perm: int = 64) -> None:
        from datasketch import MinHash, MinHashLSH

        self._minhash, self._num_perm = MinHash, num_perm
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._exact: set[str] = set()
        normalized = list(dict.fromkeys(n for n in map(normalize, texts) if n))
        hashes = MinHash.bulk([_shingles(n) for n in normalized], num_perm=num_perm) if normalized else []
        with self._lsh.insertion_session() as session:
            for text, minhash in zip(normalized, hashes, strict=True):
                self._exact.add(text)
                session.insert(text, minhash)

    def add(self, text: str) -> bool:
        normalized = normalize(text)
        if not normalized or normalized in self._exact:
            return False
        minhash = self._minhash(num_perm=self._num_perm)
        minhash.update_batch(list(_shingles(normalized)))
        if self._lsh.query(minhash):
            return False
        self._exact.add(normalized)
        self._lsh.insert(normalized, minhash)
        return True


def _shingles(text: str, size: int = 5) -> set[bytes]:
    padded = f" {text} "
    return {padded[i : i + size].encode() for i in range(max(1, len(padded) - size + 1))}


async def synthesize_slice(
    run: LabelRun,
    workload: WorkloadConfig,
    slice_name: str,
    seeds: list[Example],
    n: int,
    seen: NearDuplicates,
    progress: Progress,
    max_rounds: int = 4,
) -> None:
    """Generate up to n new inputs for one slice (a few rounds if duplicates eat some), label each."""
    accepted: list[Example] = []
    for round_index in range(max_rounds):
        wanted = n - len(accepted)
        if wanted <= 0:
            break
        try:
            texts = await generate_inputs(run.session, workload, slice_name, seeds, wanted, round_index)
        except BudgetExhausted:
            break  # keep what was generated; the run reports stopped_reason "budget"
        except (InvalidAnswer, TeacherCallError) as exc:
            run.report.failures[f"generate:{exc.reason}"] += 1
            continue
        for text in texts:
            if len(accepted) < n and seen.add(text):
                accepted.append(synthetic_example(seeds[round_index % len(seeds)], slice_name, text))
            else:
                run.report.duplicates += 1
    async with asyncio.TaskGroup() as group:
        for example in accepted:
            group.create_task(label_item(run, example, workload, progress, mode="synthesize"))


async def generate_inputs(
    session: TeacherSession,
    workload: WorkloadConfig,
    slice_name: str,
    seeds: list[Example],
    wanted: int,
    round_index: int,
) -> list[str]:
    ask_for = min(MAX_PER_REQUEST, math.ceil(wanted * 1.3))
    shown = [seed_text(s) for s in seeds[:MAX_SEEDS_SHOWN]]
    system = (
        "You write realistic, varied user messages for an application so a smaller model can learn it. "
        f"The application's job: {workload.description or workload.task}."
    )
    user = (
        f'Here are real user messages from the category "{slice_name}":\n'
        + "\n".join(f"- {json.dumps(text, ensure_ascii=False)}" for text in shown)
        + f"\n\nWrite {ask_for} new user messages of the same category, in the same style, tone and length "
        "range. Each must be clearly different from the examples and from each other; invent fresh names, "
        'numbers and details instead of copying them. Return JSON: {"inputs": ["...", ...]}.'
    )
    request: dict[str, Any] = {
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "temperature": 1.0,
    }
    if session.json_schema_ok:
        request["response_format"] = _inputs_format()
    else:
        request["messages"] = with_instruction(request["messages"], "Reply with the JSON object only.")
    answer = await session.ask(request, sample=round_index)
    return parse_inputs(message_text(answer.completion.message))


def parse_inputs(text: str) -> list[str]:
    cleaned = re.sub(r"^\s*```(?:json)?|```\s*$", "", text.strip())
    try:
        value = json.loads(cleaned)
    except ValueError as exc:
        raise InvalidAnswer("invalid_json", f"generated inputs are not JSON ({exc})") from None
    inputs = value.get("inputs") if isinstance(value, dict) else value
    if not isinstance(inputs, list):
        raise InvalidAnswer("schema_violation", 'expected {"inputs": [string, ...]}')
    return [item.strip() for item in inputs if isinstance(item, str) and item.strip()]


def _inputs_format() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"inputs": {"type": "array", "items": {"type": "string"}}},
        "required": ["inputs"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "inputs", "strict": True, "schema": schema}}


def seed_text(example: Example) -> str:
    for message in reversed(example.messages):
        if message.get("role") == "user":
            return message_text(message)
    return ""


def synthetic_example(template: Example, slice_name: str, text: str) -> Example:
    """The template's conversation with its last user message replaced by `text`."""
    messages = [dict(m) for m in template.messages]
    last_user = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last_user is None:
        messages.append({"role": "user", "content": text})
    else:
        messages[last_user] = {"role": "user", "content": text}
    digest = hashlib.sha256(
        f"synthetic\x00{template.workload_id}\x00{slice_name}\x00{normalize(text)}".encode()
    )
    return Example(
        example_id="syn-" + digest.hexdigest()[:40],
        workload_id=template.workload_id,
        messages=messages,
        target={},
        slice=slice_name,
        split="train",
        tools=template.tools,
        response_format=template.response_format,
        synthetic=True,
    )
