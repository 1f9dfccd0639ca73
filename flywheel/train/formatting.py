"""How an Example becomes training text for a student, and how generated text becomes an answer.

Prompt: the example's (already scrubbed and pruned) chat messages, flattened to role/content strings
so any chat template renders them. Completion: the target as one string —
    classification  the label
    extraction      the answer JSON, compact with sorted keys
    tool_call       one compact {"name": ..., "arguments": {...}} JSON line per call, or the text reply
    chat            the text
`parse_completion` is the inverse and returns an assistant message, so a student's answers look like
the teacher's to every later stage.

Tools (tool_call workloads, `include_tools`): when the tokenizer's chat template renders a `tools`
argument itself (Qwen2.5, Llama 3.1+, SmolLM3, ...), the request's tool schemas go through it
(`tools=`, rendering "template"); otherwise a plain system message lists them first, one
`name(arg, optional_arg?)` line each (rendering "plain"). Training and serving render a prompt with the
same `render_prompt` and the rendering recorded in the model's manifest, so they cannot drift apart.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import orjson

from flywheel.records import Example, message_text

ROLE_ALIASES = {"developer": "system", "function": "tool"}
TOOLS_IN_TEMPLATE = re.compile(r"\btools\b")
MIN_PROMPT_TOKENS = 8


def compact_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _arguments(raw: Any) -> Any:
    """Tool-call arguments as an object: logs carry them as a JSON string or already parsed."""
    if isinstance(raw, str):
        try:
            return orjson.loads(raw) if raw.strip() else {}
        except orjson.JSONDecodeError:
            return raw
    return raw if raw is not None else {}


def render_tool_calls(tool_calls: list[dict[str, Any]]) -> str:
    lines = []
    for call in tool_calls:
        function = call.get("function") or call
        lines.append(
            compact_json({"name": function.get("name"), "arguments": _arguments(function.get("arguments"))})
        )
    return "\n".join(lines)


def message_as_text(message: dict[str, Any]) -> str:
    """A message's content, with an assistant's tool calls written the way students answer them."""
    text = message_text(message)
    if message.get("tool_calls"):
        calls = render_tool_calls(message["tool_calls"])
        return f"{text}\n{calls}" if text else calls
    return text


def prompt_messages(example: Example, include_tools: bool = False) -> list[dict[str, str]]:
    """The example's messages as plain role/content strings."""
    messages = []
    if include_tools and example.tools:
        messages.append({"role": "system", "content": tools_summary(example.tools)})
    for message in example.messages:
        role = str(message.get("role", "user"))
        messages.append({"role": ROLE_ALIASES.get(role, role), "content": message_as_text(message)})
    return messages


def tools_in_template(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template renders a `tools=` argument itself."""
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # several named templates: the default one renders chats
        template = template.get("default")
    return isinstance(template, str) and TOOLS_IN_TEMPLATE.search(template) is not None


def tool_rendering(tokenizer: Any, include_tools: bool) -> str | None:
    """How a student sees the tools: "template" (the chat template's `tools=`), "plain", or None."""
    if not include_tools:
        return None
    return "template" if tools_in_template(tokenizer) else "plain"


def render_prompt(tokenizer: Any, example: Example, rendering: str | None) -> str:
    """The student's input text for `example`, up to the start of its answer (train and serve)."""
    return _render(tokenizer, prompt_messages(example, rendering == "plain"), example, rendering, True)


def render_conversation(tokenizer: Any, example: Example, task: str, rendering: str | None) -> str:
    """The prompt followed by the answer the student learns, as the template writes a finished turn."""
    messages = [
        *prompt_messages(example, rendering == "plain"),
        {"role": "assistant", "content": target_text(example, task)},
    ]
    return _render(tokenizer, messages, example, rendering, False)


def _render(
    tokenizer: Any, messages: list[dict[str, str]], example: Example, rendering: str | None, generation: bool
) -> str:
    tools = {"tools": example.tools} if rendering == "template" and example.tools else {}
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation, **tools)


def prompt_budget(max_seq_length: int, max_new_tokens: int) -> int:
    """Prompt tokens a causal student keeps (the newest ones): the rest of its length is the answer's."""
    return max(MIN_PROMPT_TOKENS, max_seq_length - max_new_tokens)


def tools_summary(tools: list[dict[str, Any]]) -> str:
    """One compact line per tool: name(arg, arg?) — the schema details stay out of a small context."""
    lines = []
    for tool in tools:
        function = tool.get("function") or tool
        params = (function.get("parameters") or {}).get("properties") or {}
        required = set((function.get("parameters") or {}).get("required") or [])
        args = ", ".join(name if name in required else f"{name}?" for name in params)
        lines.append(f"{function.get('name')}({args})")
    return "tools:\n" + "\n".join(lines)


def target_text(example: Example, task: str) -> str:
    """The completion a student learns for this example."""
    target = example.target or {}
    if task == "tool_call":
        return message_as_text(target)
    if task == "classification":
        return (example.label if example.label is not None else message_text(target)).strip()
    if task == "extraction":
        text = message_text(target) or (example.label or "")
        try:
            return compact_json(orjson.loads(text))
        except orjson.JSONDecodeError:
            return text.strip()
    return message_text(target) if target else (example.label or "")


def parse_completion(text: str, task: str) -> dict[str, Any]:
    """Generated text -> an assistant message (tool_calls for tool-call answers, else content)."""
    text = text.strip()
    if task == "tool_call":
        calls = _parse_tool_lines(text)
        if calls is not None:
            return {"role": "assistant", "content": None, "tool_calls": calls}
    if task == "extraction":
        with contextlib.suppress(orjson.JSONDecodeError):
            text = compact_json(orjson.loads(text))
    return {"role": "assistant", "content": text}


def _parse_tool_lines(text: str) -> list[dict[str, Any]] | None:
    """Every non-empty line a {"name", "arguments"} object -> OpenAI tool_calls; anything else -> None."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    calls = []
    for index, line in enumerate(lines):
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            return None
        arguments = value.get("arguments") if value.get("arguments") is not None else {}
        calls.append(
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": value["name"], "arguments": compact_json(arguments)},
            }
        )
    return calls


def prompt_completion_row(example: Example, task: str, include_tools: bool = False) -> dict[str, Any]:
    """TRL's conversational prompt/completion format (completion-only loss)."""
    return {
        "prompt": prompt_messages(example, include_tools),
        "completion": [{"role": "assistant", "content": target_text(example, task)}],
    }


def messages_row(example: Example, task: str, include_tools: bool = False) -> dict[str, Any]:
    """TRL's conversational messages format (assistant-only loss through generation markers)."""
    messages = prompt_messages(example, include_tools)
    messages.append({"role": "assistant", "content": target_text(example, task)})
    return {"messages": messages}


def classifier_text(example: Example) -> str:
    """What an encoder classifier reads: the non-system turns, newest last."""
    parts = [message_as_text(m) for m in example.messages if m.get("role") not in ("system", "developer")]
    return "\n".join(p for p in parts if p)


def example_label(example: Example) -> str:
    """The class label an encoder learns: the example's label, else the target's text."""
    if example.label is not None:
        return example.label.strip()
    return message_text(example.target).strip()
