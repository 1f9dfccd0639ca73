"""The schema-tool student as a Predictor: reads the request's own tools, picks a function (or a
text reply), fills each parameter from the conversation, coerces types and checks the schema.

Confidence is the chooser's probability times the least sure parameter decision, and 0 when the
call breaks the request's schema or the student would reply in text (it writes no free text), so
`flywheel serve` routes those requests to the teacher.
"""

from __future__ import annotations

import time
from typing import Any

from flywheel.records import Example, Prediction
from flywheel.train.formatting import compact_json
from flywheel.train.schematool.chooser import FunctionCache, choose_bi
from flywheel.train.schematool.data import (
    TEXT_OPTION,
    Function,
    context_text,
    function_text,
    offered_functions,
    question,
)
from flywheel.train.schematool.filler import SpanScorer, fill_arguments
from flywheel.train.schematool.model import encode_pairs


class SchemaToolStudent:
    def __init__(self, manifest: dict[str, Any], model: Any, tokenizer: Any, batch_size: int = 32) -> None:
        self.manifest = manifest
        self.name = manifest.get("model_id") or manifest["name"]
        self.model = model.eval()
        self.tokenizer = tokenizer
        tokenizer.truncation_side = "left"
        options = manifest.get("schema_tool") or {}
        self.max_length = int(options.get("max_length", 512))
        self.chooser_max_length = int(options.get("chooser_max_length", 192))
        self.max_span_tokens = int(options.get("max_span_tokens", 40))
        self.chooser = options.get("chooser", "cross")  # bundles from before the option: cross
        self.function_cache = FunctionCache()

    def predict(self, examples: list[Example]) -> list[Prediction]:
        return [self._predict(e) for e in examples]

    def _predict(self, example: Example) -> Prediction:
        import torch

        started = time.perf_counter()
        context = context_text(example.messages)
        offered = offered_functions(example.tools or (example.request or {}).get("tools"))
        with torch.inference_mode():
            function, chosen_p, prompt_tokens = self._choose(context, offered, example.messages)
            if function is None:
                message, confidence = {"role": "assistant", "content": ""}, 0.0
            else:
                arguments, fill_p = self._fill(function, context)
                message = call_message(function.name, arguments)
                confidence = chosen_p * fill_p if schema_ok(function, arguments) else 0.0
        return Prediction(
            message=message,
            confidence=confidence,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(message.get("tool_calls") or []),
            latency_ms=(time.perf_counter() - started) * 1000,
        )

    def _choose(
        self, context: str, offered: list[Function], messages: list[dict[str, Any]] | None = None
    ) -> tuple[Function | None, float, int]:
        """The function to call (None: reply in text), its probability, and the tokens read."""
        if self.chooser == "bi":
            best, p, tokens = choose_bi(self.model, self.tokenizer, messages or [], offered,
                                        self.function_cache, self.chooser_max_length)  # fmt: skip
            return (offered[best - 1] if best else None), p, tokens
        texts = [TEXT_OPTION, *(function_text(f) for f in offered)]
        batch = encode_pairs(self.tokenizer, texts, [context] * len(texts), self.chooser_max_length)
        batch.pop("offset_mapping")
        probs = self.model.choose(batch).float().softmax(-1)
        best = int(probs.argmax())
        tokens = int(batch["attention_mask"][0].sum())
        return (offered[best - 1] if best else None), float(probs[best]), tokens

    def _fill(self, function: Function, context: str) -> tuple[dict[str, Any], float]:
        """Each parameter's value (absent ones left out) and the least sure decision's probability."""
        names = list(function.properties)
        if not names:
            return {}, 1.0
        questions = [question(n, function.properties[n]) for n in names]
        batch = encode_pairs(self.tokenizer, questions, [context] * len(names), self.max_length)
        offsets = batch.pop("offset_mapping").tolist()
        context_mask = batch["context_mask"].tolist()
        start, end, mode = self.model.fill(batch)
        mode_probs = mode.float().softmax(-1)
        rows = []
        for row in range(len(names)):
            found = top_spans(start[row], end[row], self.max_span_tokens)
            top = [word_bounds(context, offsets[row][a][0], offsets[row][b][1]) for _, a, b in found]
            scorer = SpanScorer(start[row], end[row], offsets[row], context_mask[row])
            rows.append((scorer, mode_probs[row], list(dict.fromkeys(top))))
        return fill_arguments(function, context, rows)


def word_bounds(context: str, start: int, end: int) -> tuple[int, int]:
    """A span widened to whole words: a value never ends inside a word ("mitochond" -> "mitochondria")."""
    while start > 0 and context[start - 1].isalnum() and context[start].isalnum():
        start -= 1
    while end < len(context) and end > 0 and context[end].isalnum() and context[end - 1].isalnum():
        end += 1
    return start, end


def top_spans(start: Any, end: Any, max_tokens: int, k: int = 20) -> list[tuple[float, int, int]]:
    """The k best (score, start, end) token spans by summed logit, end within max_tokens of start."""
    import torch

    start, end = start.float(), end.float()
    length = start.shape[0]
    scores = start[:, None] + end[None, :]
    band = torch.ones(length, length, dtype=torch.bool).triu().tril(max_tokens - 1)
    flat = scores.masked_fill(~band, float("-inf")).flatten()
    best = flat.topk(min(k, flat.numel()))
    pairs = zip(best.values.tolist(), best.indices.tolist(), strict=True)
    return [(v, i // length, i % length) for v, i in pairs if v != float("-inf")]


def call_message(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    call = {
        "id": "call_0",
        "type": "function",
        "function": {"name": name, "arguments": compact_json(arguments)},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def schema_ok(function: Function, arguments: dict[str, Any]) -> bool:
    from flywheel.answers.spec import schema_error

    schema = {"type": "object", "properties": function.properties, "required": list(function.required)}
    return schema_error(schema, arguments) is None
