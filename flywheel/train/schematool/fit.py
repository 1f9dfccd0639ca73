"""Training the schema-tool student: chooser groups and parameter questions, interleaved, one loop.

Chooser groups: each training conversation against its offered functions, a few functions drawn
from other conversations (so it learns to tell a fitting function from a plausible one, not to
memorise names) and the "reply in text" option; with probability `text_option_rate` the right
function is withheld and "reply in text" becomes the answer (a request whose tools do not fit).
Parameter questions: one per parameter of the called function, answered by a span of the
conversation, a boolean, or "absent" (omitted optional parameter). A gold value the conversation
never writes (a default, a reformatted date) teaches nothing about where values sit and is skipped.
A located value is also ranked against the parameter's typed candidates (the other numbers, names,
ids and lists in the text), the choice the filler makes at inference.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flywheel.records import Example
from flywheel.train.schematool.candidates import candidate_spans
from flywheel.train.schematool.chooser import bi_chooser_loss, chooser_text
from flywheel.train.schematool.data import (
    ABSENT,
    SPAN,
    TEXT_OPTION,
    Function,
    context_text,
    function_text,
    gold_calls,
    gold_mode,
    locate_value,
    offered_functions,
    question,
)
from flywheel.train.schematool.model import encode_pairs, span_positions

MAX_RIVALS = 24  # candidate spans per parameter question in the ranking loss


@dataclass(frozen=True, slots=True)
class ChooserItem:
    context: str
    offered: tuple[Function, ...]
    target: str | None  # the called function's name; None = reply in text


@dataclass(frozen=True, slots=True)
class FillItem:
    question: str
    context: str
    mode: int
    span: tuple[int, int] | None  # characters of the context; None = mode only
    rivals: tuple[tuple[int, int], ...] = ()  # other candidate spans the gold span must beat


def training_items(
    examples: list[Example], chooser_view: Callable[[list[dict[str, Any]]], str] = context_text
) -> tuple[list[ChooserItem], list[FillItem]]:
    """Chooser items (the conversation as `chooser_view` renders it) and parameter questions."""
    choosers, fills = [], []
    for example in examples:
        offered = offered_functions(example.tools or (example.request or {}).get("tools"))
        if not offered:
            continue
        context = context_text(example.messages)
        calls = gold_calls(example)
        by_name = {f.name: f for f in offered}
        if calls and calls[0][0] not in by_name:
            continue  # a call to a function the request did not offer: nothing to learn from
        view = context if chooser_view is context_text else chooser_view(example.messages)
        choosers.append(ChooserItem(view, tuple(offered), calls[0][0] if calls else None))
        for name, arguments in calls:
            if name in by_name:
                fills += parameter_items(by_name[name], arguments, context)
    return choosers, fills


def parameter_items(function: Function, arguments: dict[str, Any], context: str) -> list[FillItem]:
    items = []
    for name, prop in function.properties.items():
        ask = question(name, prop)
        if name not in arguments:
            items.append(FillItem(ask, context, ABSENT, None))
            continue
        value = arguments[name]
        mode = gold_mode(value)
        if mode != SPAN:
            items.append(FillItem(ask, context, mode, None))
            continue
        span = locate_value(context, value)
        if span is not None or prop.get("enum"):  # an enum value is chosen even when not written
            rivals = [c for c in candidate_spans(context, prop) if span and c != span]
            items.append(FillItem(ask, context, SPAN, span, tuple(rivals[:MAX_RIVALS])))
    return items


def chooser_group(
    item: ChooserItem, pool: list[Function], options: Any, rng: random.Random
) -> tuple[list[str], int]:
    """(option texts, index of the right one): the text option, the right function, a sample of
    the other offered ones and distractors from other conversations, at most `max_options` in all
    (an agent offering 16 tools would otherwise cost 17 encodings per conversation and step)."""
    target = item.target
    if target is not None and rng.random() < options.text_option_rate:
        target = None  # the right function withheld: "reply in text" is then the answer
    others = [f for f in item.offered if f.name != item.target]
    rng.shuffle(others)
    right = [f for f in item.offered if f.name == target]
    room = options.max_options - 1 - len(right)
    names = {f.name for f in item.offered}
    sampled = rng.sample(pool, min(len(pool), options.negatives + 4))
    distractors = [f for f in sampled if f.name not in names][: min(options.negatives, room)]
    candidates = right + others[: room - len(distractors)] + distractors
    rng.shuffle(candidates)
    texts = [TEXT_OPTION, *(function_text(f) for f in candidates)]
    index = 0 if target is None else 1 + [f.name for f in candidates].index(target)
    return texts, index


def fit_schema_tool(
    model: Any, tokenizer: Any, train: list[Example], settings: Any, *, seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[list[dict[str, Any]], float, dict[str, int]]:  # fmt: skip
    """Train in place; (log history, tokens per second, item counts)."""
    import torch

    from flywheel.train.hardware import configure_threads

    configure_threads()  # fewer threads than cores on a busy machine: OpenMP spinning costs 3-4x
    options = _options(settings)
    choosers, fills = training_items(train, chooser_text if options.chooser == "bi" else context_text)
    if not choosers:
        raise ValueError("no training example offers tools with a call to one of them (or a text reply)")
    rng = random.Random(seed)
    torch.manual_seed(seed)
    pool = list({f.name: f for item in choosers for f in item.offered}.values())
    group, batch = options.chooser_group, settings.batch_size
    per_epoch = math.ceil(len(choosers) / group) + math.ceil(len(fills) / batch)
    total = settings.options.max_steps
    if total <= 0:
        total = max(1, round(per_epoch * settings.epochs))
    optimizer, scheduler = _optimizer(model, settings, options, total)
    model.train()
    history, tokens, started, step = [], 0, time.perf_counter(), 0
    while step < total:
        for kind, chunk in _schedule(choosers, fills, group, batch, rng)[: total - step]:
            if kind == "choose" and options.chooser == "bi":
                loss, seen = bi_chooser_loss(model, tokenizer, chunk, pool, options, rng)
            elif kind == "choose":
                loss, seen = _chooser_loss(model, tokenizer, chunk, pool, options, rng)
            else:
                loss, seen = _fill_loss(model, tokenizer, chunk, options)
            _update(model, loss, optimizer, scheduler)
            step, tokens = step + 1, tokens + seen
            if step % 10 == 0 or step == total:
                row = {"step": step, "loss": float(loss.detach()), "epoch": round(step / per_epoch, 3)}
                history.append(row | {"learning_rate": scheduler.get_last_lr()[0]})
            if progress is not None:
                progress(step, total)
    model.eval()
    rate = tokens / max(time.perf_counter() - started, 1e-9)
    return history, rate, {"chooser_examples": len(choosers), "parameter_questions": len(fills)}


def _update(model: Any, loss: Any, optimizer: Any, scheduler: Any) -> None:
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad()


def _options(settings: Any) -> Any:
    from flywheel.train.kinds.schema_tool import SchemaToolOptions

    return SchemaToolOptions.model_validate(settings.options.kind_options)


def _schedule(
    choosers: list, fills: list, group: int, batch: int, rng: random.Random
) -> list[tuple[str, list]]:
    """One epoch of batches of both kinds, shuffled together so neither head forgets the other."""
    choosers, fills = rng.sample(choosers, len(choosers)), rng.sample(fills, len(fills))
    steps = [("choose", choosers[i : i + group]) for i in range(0, len(choosers), group)]
    steps += [("fill", fills[i : i + batch]) for i in range(0, len(fills), batch)]
    rng.shuffle(steps)
    return steps


def _optimizer(model: Any, settings: Any, options: Any, total: int) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    # Word embeddings stay fixed (half of MiniLM; a dense gradient each step for no gain here);
    # the heads start random and learn faster than the pretrained encoder may move.
    model.encoder.get_input_embeddings().weight.requires_grad_(False)
    layers = getattr(getattr(model.encoder, "encoder", None), "layer", None)
    if options.train_layers and layers is not None:
        # No gradient below the first trained layer: autograd then keeps no activations there.
        for layer in list(layers)[: max(0, len(layers) - options.train_layers)]:
            layer.requires_grad_(False)
    encoder = [p for p in model.encoder.parameters() if p.requires_grad]
    heads = [p for name, p in model.named_parameters() if not name.startswith("encoder.")]
    optimizer = torch.optim.AdamW(
        [{"params": encoder, "lr": settings.learning_rate},
         {"params": heads, "lr": settings.learning_rate * options.head_lr_multiplier}],
        weight_decay=settings.options.weight_decay,
    )  # fmt: skip
    warmup = int(total * settings.options.warmup_ratio)
    return optimizer, get_linear_schedule_with_warmup(optimizer, warmup, total)


def _chooser_loss(model: Any, tokenizer: Any, items: list[ChooserItem], pool: list[Function], options: Any,
                  rng: random.Random) -> tuple[Any, int]:  # fmt: skip
    import torch

    texts, contexts, bounds, targets = [], [], [], []
    for item in items:
        options_text, index = chooser_group(item, pool, options, rng)
        bounds.append((len(texts), len(texts) + len(options_text)))
        texts += options_text
        contexts += [item.context] * len(options_text)
        targets.append(index)
    batch = encode_pairs(tokenizer, texts, contexts, options.chooser_max_length)
    scores = model.choose(batch)
    losses = [
        torch.nn.functional.cross_entropy(scores[a:b].unsqueeze(0), torch.tensor([t]))
        for (a, b), t in zip(bounds, targets, strict=True)
    ]
    return torch.stack(losses).mean(), int(batch["attention_mask"].sum())


def _fill_loss(model: Any, tokenizer: Any, items: list[FillItem], options: Any) -> tuple[Any, int]:
    import torch

    batch = encode_pairs(
        tokenizer, [i.question for i in items], [i.context for i in items], options.max_length
    )
    offsets = batch.pop("offset_mapping").tolist()
    context_mask = batch["context_mask"].tolist()
    starts, ends = [], []
    for row, item in enumerate(items):
        found = span_positions(offsets[row], context_mask[row], *item.span) if item.span else None
        starts.append(found[0] if found else -100)
        ends.append(found[1] if found else -100)
    start, end, mode = model.fill(batch)
    loss = torch.nn.functional.cross_entropy(mode, torch.tensor([i.mode for i in items]))
    if any(s >= 0 for s in starts):
        # -inf outside the context would make an ignored row NaN: clamp before the loss
        start, end = start.clamp(min=-1e4), end.clamp(min=-1e4)
        cross = torch.nn.functional.cross_entropy
        spans = cross(start, torch.tensor(starts), ignore_index=-100)
        loss = loss + (spans + cross(end, torch.tensor(ends), ignore_index=-100)) / 2
        ranking = _ranking_loss(start, end, items, offsets, context_mask)
        if ranking is not None:
            loss = loss + ranking
    return loss, int(batch["attention_mask"].sum())


def _ranking_loss(start: Any, end: Any, items: list[FillItem], offsets: list, context_mask: list) -> Any:
    """Cross-entropy of the gold span against its rivals, each scored as the filler scores it:
    log p(start at its first token) + log p(end at its last token)."""
    import torch

    start, end = start.log_softmax(-1), end.log_softmax(-1)
    losses = []
    for row, item in enumerate(items):
        if not item.span or not item.rivals:
            continue
        tokens = [(i, s, e) for i, ((s, e), m) in enumerate(zip(offsets[row], context_mask[row], strict=True))
                  if m and e > s]  # fmt: skip
        scores = []
        for a, b in (item.span, *item.rivals):
            inside = [i for i, s, e in tokens if s < b and e > a]
            if inside:
                scores.append(start[row, inside[0]] + end[row, inside[-1]])
            elif not scores:
                break  # the gold span was cut off: nothing to rank
        if len(scores) > 1:
            losses.append(-torch.stack(scores).log_softmax(-1)[0])
    return torch.stack(losses).mean() if losses else None
