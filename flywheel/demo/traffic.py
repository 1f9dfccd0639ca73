"""Demo traffic: realistic OpenAI chat-completions logs for three workloads, with planted faults.

`generate_demo_traffic(out_dir, seed, size)` writes, per workload, `<workload_id>.jsonl` (the log an
application would have captured: one {"request", "response", "timestamp", "client_id", "workload_id",
"latency_ms", "feedback"?, "metadata"} object per line) and `<workload_id>.gold.jsonl` (the correct
answer for every line), plus `planted.json`: the ground truth of every planted fault, by 1-based line
number (the same number connectors put in `source_ref` as `path:line`).

planted.json:
    {"version": 1, "seed", "size", "base_timestamp", "days", "rates": {fault: rate},
     "workloads": {workload_id: {"task", "file", "gold_file", "lines", "counts": {fault: n},
                                 "faults": {fault: [entry, ...]}}}}
Fault entries always carry "line"; per fault type:
    exact_duplicate   {"line", "original_line"}                 (byte-identical repeat of original_line)
    near_duplicate    {"line", "original_line", "edits"}        (same request with small text edits)
    error             {"line", "type", "code"}                  (response is {"error": ...})
    refusal           {"line", "text", "field"}                 (field: "content" or "refusal")
    empty             {"line"}                                  (content "", finish_reason "stop")
    truncated         {"line", "content"}                       (finish_reason "length")
    pii               {"line", "items": [{"kind", "value", "origin"}]}  every email/phone/card string in
                      the user message; origin "planted" (fault) or "task" (a field the task needs)
    negative_feedback {"line", "on_wrong_answer"}               (feedback {"rating": "down"})
    wrong_answer      {"line", "answer", "correct", ...}        (kind/field for extraction and tool_call)
    malformed_answer  {"line", "kind", ...}                     (invalid JSON/schema, unknown tool, bad args)
    malformed_line    {"line", "kind"}                          (truncated_json, not_json, invalid_utf8)
    streamed          {"line", "chunks"}                        (response logged as chunk list; valid)
Faults of an original are repeated on its exact duplicates with "duplicate_of": original line, and PII
on a near duplicate carries "near_duplicate_of"; the rate of a fault counts entries without those keys.
Gold lines: {"line", "answer", "slice", "faults": [fault types on this line]}; "answer" is the label
(classification), the order object (extraction) or {"type": "tool_call"|"text", ...} (tool_call); null
only for the not_json lines, which hold no record.
"""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from flywheel.demo import common
from flywheel.demo.assistant import ToolAssistant
from flywheel.demo.common import Example
from flywheel.demo.orders import OrderExtraction
from flywheel.demo.similarity import MEASURE, jaccard, similar_pairs
from flywheel.demo.support import SupportRouting
from flywheel.demo.text import near_duplicate
from flywheel.demo.workload import DemoWorkload

# Planted fault rates, as a fraction of `size` (the clean records per workload).
RATES: dict[str, float] = {
    "exact_duplicate": 0.03,
    "near_duplicate": 0.04,
    "error": 0.02,
    "refusal": 0.01,
    "empty": 0.01,
    "truncated": 0.01,
    "pii": 0.05,
    "negative_feedback": 0.02,
    "wrong_answer": 0.03,
    "malformed_answer": 0.015,
    "malformed_line": 0.005,
    "streamed": 0.02,
}
FAULT_TYPES = tuple(RATES)
# Faults that replace the answer; a record carries at most one of them.
RESPONSE_FAULTS = ("error", "refusal", "empty", "truncated", "wrong_answer", "malformed_answer")
MALFORMED_LINE_KINDS = ("truncated_json", "not_json", "invalid_utf8")
POSITIVE_FEEDBACK_RATE = 0.05
# Share of negative feedback that lands on wrong answers (users notice some of them).
DOWNVOTES_ON_WRONG = 0.4
WORKLOADS: tuple[DemoWorkload, ...] = (SupportRouting(), OrderExtraction(), ToolAssistant())
NOISE_LINES = (
    "2025-06-{day:02d}T{hour:02d}:14:07Z WARN log-shipper: buffer full, dropped 3 records",
    "<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>",
    'Traceback (most recent call last): File "capture.py", line 88, in flush',
    "--- log rotated at 2025-06-{day:02d} {hour:02d}:00:00 ---",
    "request_id=req_{day}{hour} status=200 latency=812ms",
)
BAD_BYTES_MARK = "@@BADBYTES@@"


@dataclass(frozen=True)
class WorkloadManifest:
    workload_id: str
    task: str
    path: Path
    gold_path: Path
    lines: int
    counts: dict[str, int]
    faults: dict[str, list[dict[str, Any]]]

    def lines_with(self, fault: str) -> set[int]:
        """Line numbers (1-based) that carry `fault`, including inherited copies on duplicates."""
        return {entry["line"] for entry in self.faults.get(fault, [])}

    def gold(self) -> dict[int, dict[str, Any]]:
        """The gold sidecar: line number -> {"line", "answer", "slice", "faults"}."""
        with self.gold_path.open("rb") as handle:
            rows = [orjson.loads(line) for line in handle if line.strip()]
        return {row["line"]: row for row in rows}


@dataclass(frozen=True)
class DemoManifest:
    out_dir: Path
    seed: int
    size: int
    planted_path: Path
    rates: dict[str, float]
    workloads: dict[str, WorkloadManifest] = field(default_factory=dict)

    @property
    def files(self) -> dict[str, Path]:
        return {w: m.path for w, m in self.workloads.items()}

    @classmethod
    def load(cls, out_dir: Path) -> DemoManifest:
        """Read back the manifest of a directory written by `generate_demo_traffic`."""
        out_dir = Path(out_dir)
        planted = json.loads((out_dir / "planted.json").read_text(encoding="utf-8"))
        return _manifest(out_dir, planted)


@dataclass
class _Rec:
    """One output line before numbering."""

    example: Example | None
    sort_key: float
    kind: str = "base"  # base | near | exact | malformed
    doc: dict[str, Any] | None = None
    faults: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    original: _Rec | None = None
    edits: list[str] = field(default_factory=list)
    raw: bytes = b""
    line: int = 0


def generate_demo_traffic(
    out_dir: Path, seed: int = 7, size: int = 1500, *, rates: Mapping[str, float] | None = None
) -> DemoManifest:
    """Write demo logs, gold answers and planted.json to `out_dir`; same seed, same bytes."""
    if size < 1:
        raise ValueError("size must be at least 1")
    rates = {**RATES, **(rates or {})}
    unknown = set(rates) - set(RATES)
    if unknown:
        raise ValueError(f"unknown fault rates: {sorted(unknown)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    planted: dict[str, Any] = {
        "version": 1,
        "seed": seed,
        "size": size,
        "base_timestamp": common.BASE_TS,
        "days": common.DAYS,
        "rates": rates,
        "near_duplicate_measure": MEASURE,
        "workloads": {},
    }
    for workload in WORKLOADS:
        rng = random.Random(f"flywheel-demo:{seed}:{workload.workload_id}")
        records = _build(workload, rng, size, rates)
        planted["workloads"][workload.workload_id] = _write(workload, records, out_dir)
    text = json.dumps(planted, ensure_ascii=False, indent=1, sort_keys=False) + "\n"
    (out_dir / "planted.json").write_text(text, encoding="utf-8")
    return _manifest(out_dir, planted)


def _manifest(out_dir: Path, planted: dict[str, Any]) -> DemoManifest:
    workloads = {
        wid: WorkloadManifest(
            wid,
            w["task"],
            out_dir / w["file"],
            out_dir / w["gold_file"],
            w["lines"],
            w["counts"],
            w["faults"],
        )
        for wid, w in planted["workloads"].items()
    }
    return DemoManifest(
        out_dir, planted["seed"], planted["size"], out_dir / "planted.json", planted["rates"], workloads
    )


def _count(rate: float, size: int) -> int:
    count = round(rate * size)
    return max(count, 1) if rate > 0 and size >= 50 else count


def normalized(text: str) -> str:
    """Text with case, punctuation, emoji and spacing removed: two samples never share this key."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def _sample_unique(workload: DemoWorkload, rng: random.Random, seen: set[str]) -> Example:
    """A fresh example whose normalized text differs from every earlier one (no unplanted duplicates)."""
    for _ in range(200):
        example = workload.sample(rng)
        if normalized(example.text) not in seen:
            break
    else:  # pragma: no cover - only for sizes far beyond the template space
        example.text += f" (ref {len(seen)})"
    seen.add(normalized(example.text))
    return example


def _build(workload: DemoWorkload, rng: random.Random, size: int, rates: dict[str, float]) -> list[_Rec]:
    seen: set[str] = set()
    examples = [_sample_unique(workload, rng, seen) for _ in range(size)]
    order = list(range(size))
    rng.shuffle(order)
    response_fault: dict[int, str] = {}
    cursor = 0
    for fault in RESPONSE_FAULTS:
        for index in order[cursor : cursor + _count(rates[fault], size)]:
            response_fault[index] = fault
        cursor += _count(rates[fault], size)
    clean = [i for i in range(size) if i not in response_fault]
    streamed = set(rng.sample(clean, min(len(clean), _count(rates["streamed"], size))))
    pii = set(rng.sample(range(size), min(size, _count(rates["pii"], size))))
    wrong = sorted(i for i, f in response_fault.items() if f == "wrong_answer")
    n_down = min(size, _count(rates["negative_feedback"], size))
    down_on_wrong = set(rng.sample(wrong, min(len(wrong), round(n_down * DOWNVOTES_ON_WRONG))))
    others = [i for i in range(size) if i not in down_on_wrong and response_fault.get(i) != "error"]
    down = down_on_wrong | set(rng.sample(others, min(len(others), n_down - len(down_on_wrong))))
    for index in sorted(pii):
        common.plant_pii(rng, examples[index], workload.pii_kinds)

    records: list[_Rec] = []
    for index, example in enumerate(examples):
        ts = common.pick_timestamp(rng)
        rec = _Rec(example, ts)
        feedback = None
        if index in down:
            feedback = {"rating": "down"}
            rec.faults.append(("negative_feedback", {"on_wrong_answer": index in down_on_wrong}))
        elif index not in response_fault and rng.random() < POSITIVE_FEEDBACK_RATE:
            feedback = {"rating": "up"}
        if example.pii:
            rec.faults.append(("pii", {"items": list(example.pii)}))
        rec.doc = _record(workload, rng, rec, ts, response_fault.get(index), index in streamed, feedback)
        records.append(rec)

    # Near duplicates: the same user message re-sent with small edits, answered the same way.
    originals = rng.sample(clean, min(len(clean), _count(rates["near_duplicate"], size)))
    for index in originals:
        source = records[index]
        own_key = normalized(source.example.text)
        for _ in range(10):
            text, edits = near_duplicate(rng, source.example.text, source.example.protected)
            if normalized(text) == own_key or normalized(text) not in seen:
                break
        else:
            text, edits = source.example.text + "  ", ["whitespace"]
        seen.add(normalized(text))
        example = copy.deepcopy(source.example)
        example.text = text
        example.pii = [p for p in example.pii if p["value"] in text]
        ts = min(source.sort_key + rng.uniform(60, 2 * 86_400), common.END_TS - 1.0)
        near = _Rec(example, round(ts, 3), kind="near", original=source, edits=edits)
        if example.pii:
            near.faults.append(("pii", {"items": example.pii, "near_duplicate_of": None}))
        near.doc = _record(workload, rng, near, near.sort_key, None, False, None)
        records.append(near)

    # Exact duplicates: the log shipper delivered the same line twice (byte-identical, later position).
    for source in rng.sample(records[:size], min(size, _count(rates["exact_duplicate"], size))):
        records.append(
            _Rec(source.example, source.sort_key + rng.uniform(0.5, 6 * 3600), kind="exact", original=source)
        )

    # Malformed lines: cut-off JSON, non-JSON noise, invalid UTF-8.
    offset = rng.randrange(len(MALFORMED_LINE_KINDS))
    for number in range(_count(rates["malformed_line"], size)):
        kind = MALFORMED_LINE_KINDS[(number + offset) % len(MALFORMED_LINE_KINDS)]
        example = _sample_unique(workload, rng, seen) if kind != "not_json" else None
        ts = common.pick_timestamp(rng)
        rec = _Rec(example, ts, kind="malformed")
        rec.faults.append(("malformed_line", {"kind": kind}))
        rec.raw = _malformed_line(workload, rng, rec, kind, ts)
        present = [p for p in (example.pii if example else []) if p["value"].encode() in rec.raw]
        if present:
            rec.faults.append(("pii", {"items": present}))
        records.append(rec)

    records.sort(key=lambda r: r.sort_key)
    for line, rec in enumerate(records, start=1):
        rec.line = line
    return records


def _record(
    workload: DemoWorkload,
    rng: random.Random,
    rec: _Rec,
    ts: float,
    fault: str | None,
    stream: bool,
    feedback: dict[str, str] | None,
) -> dict[str, Any]:
    """The log document of one call; appends the planted response fault (if any) to rec.faults."""
    example = rec.example
    assert example is not None
    client, model = common.pick_client(rng)
    if rec.kind == "near" and rec.original is not None and rng.random() < 0.7:
        client = rec.original.doc["client_id"] if rec.original.doc else client
    request = workload.request(rng, example.text, model, stream)
    created = int(ts)
    response: Any
    if fault == "error":
        response, latency = common.error_response(rng, model)
        rec.faults.append(("error", {"type": response["error"]["type"], "code": response["error"]["code"]}))
    else:
        finish = "stop"
        if fault == "refusal":
            text = rng.choice(common.REFUSALS)
            message = workload.refusal(rng, text)
            where = "refusal" if message.get("refusal") else "content"
            rec.faults.append(("refusal", {"text": text, "field": where}))
        elif fault == "empty":
            message = common.assistant_message("")
            rec.faults.append(("empty", {}))
        elif fault == "truncated":
            message, finish = workload.truncated(rng, example), "length"
            detail = {"content": message["content"]}
            if message.get("tool_calls"):
                detail["arguments"] = message["tool_calls"][0]["function"]["arguments"]
            rec.faults.append(("truncated", detail))
        elif fault == "wrong_answer":
            answer, detail = workload.wrong(rng, example)
            message, finish = workload.answer_message(rng, answer)
            rec.faults.append(
                ("wrong_answer", detail if "answer" in detail else {**detail, "answer": answer})
            )
        elif fault == "malformed_answer":
            message, finish, detail = workload.malformed(rng, example)
            rec.faults.append(("malformed_answer", detail))
        else:
            message, finish = workload.answer_message(rng, example.answer)
        response = common.completion(rng, request, message, finish, created)
        latency = common.latency_ms(
            rng, model, response["usage"]["completion_tokens"], response["usage"]["prompt_tokens"]
        )
        if stream:
            response = common.to_chunks(rng, response)
            rec.faults.append(("streamed", {"chunks": len(response)}))
    doc: dict[str, Any] = {
        "request": request,
        "response": response,
        "timestamp": ts,
        "client_id": client,
        "workload_id": workload.workload_id,
        "latency_ms": latency,
    }
    if feedback:
        doc["feedback"] = feedback
    doc["metadata"] = {
        "request_id": common.rand_id(rng, "req_", 24, "0123456789abcdef"),
        "env": "prod",
        "app_version": common.APP_VERSIONS.get(client, "1.0.0"),
        # The reviewed (correct) answer, as a team that audits its LLM's output records it: ingest
        # keeps it as the gold label, so the gate scores the teacher's own mistakes too.
        "label": example.answer,
    }
    return doc


def _malformed_line(workload: DemoWorkload, rng: random.Random, rec: _Rec, kind: str, ts: float) -> bytes:
    if kind == "not_json":
        when = int(ts - common.BASE_TS)
        noise = rng.choice(NOISE_LINES).format(day=2 + when // 86_400, hour=(when % 86_400) // 3600)
        return noise.encode() + b"\n"
    assert rec.example is not None
    if kind == "invalid_utf8":
        words = rec.example.text.split(" ")
        at = rng.randrange(len(words))
        words[at] = BAD_BYTES_MARK + words[at]
        marked = copy.copy(rec.example)
        marked.text = " ".join(words)
        doc = _record(workload, rng, _Rec(marked, ts), ts, None, False, None)
        bad = rng.choice((b"\xff", b"\xc3\x28", b"\xe2\x82"))
        return orjson.dumps(doc).replace(BAD_BYTES_MARK.encode(), bad) + b"\n"
    doc = _record(workload, rng, _Rec(rec.example, ts), ts, None, False, None)
    data = orjson.dumps(doc)
    cut = rng.randint(len(data) // 3, len(data) * 9 // 10)
    while cut > 1:
        try:
            data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            cut -= 1
            continue
        if data[cut - 1 : cut] not in (b"}", b"]", b" "):
            break
        cut -= 1
    return data[:cut] + b"\n"


def _write(workload: DemoWorkload, records: list[_Rec], out_dir: Path) -> dict[str, Any]:
    faults: dict[str, list[dict[str, Any]]] = {name: [] for name in FAULT_TYPES}
    chunks: list[bytes] = []
    gold_chunks: list[bytes] = []
    for rec in records:
        entries: list[tuple[str, dict[str, Any]]] = []
        if rec.kind == "exact":
            assert rec.original is not None
            rec.raw = rec.original.raw
            entries.append(("exact_duplicate", {"original_line": rec.original.line}))
            for name, detail in _entries_of(rec.original):
                entries.append((name, {**detail, "duplicate_of": rec.original.line}))
        else:
            if rec.kind != "malformed":
                rec.raw = orjson.dumps(rec.doc) + b"\n"
            entries.extend(_entries_of(rec))
        for name, detail in entries:
            faults[name].append({"line": rec.line, **detail})
        chunks.append(rec.raw)
        example = rec.example
        gold = {
            "line": rec.line,
            "answer": example.answer if example else None,
            "slice": example.slice if example else None,
            "faults": sorted({name for name, _ in entries}),
        }
        gold_chunks.append(orjson.dumps(gold) + b"\n")
    path = out_dir / f"{workload.workload_id}.jsonl"
    gold_path = out_dir / f"{workload.workload_id}.gold.jsonl"
    path.write_bytes(b"".join(chunks))
    gold_path.write_bytes(b"".join(gold_chunks))
    counts = {
        name: sum(1 for e in entries if not _inherited(e) and _counts(name, e))
        for name, entries in faults.items()
    }
    texts = {rec.line: rec.example.text for rec in records if rec.kind in ("base", "near") and rec.example}
    planted_pairs = {
        (min(e["line"], e["original_line"]), max(e["line"], e["original_line"]))
        for e in faults["near_duplicate"]
    }
    incidental = [
        {"lines": [a, b], "jaccard": score}
        for a, b, score in similar_pairs(texts)
        if (a, b) not in planted_pairs
    ]
    return {
        "task": workload.task,
        "file": path.name,
        "gold_file": gold_path.name,
        "lines": len(records),
        "counts": counts,
        "faults": faults,
        "incidental_near_duplicates": incidental,
    }


def _entries_of(rec: _Rec) -> list[tuple[str, dict[str, Any]]]:
    entries = []
    if rec.kind == "near" and rec.original is not None:
        score = round(jaccard(rec.original.example.text, rec.example.text), 4)  # type: ignore[union-attr]
        entries.append(
            ("near_duplicate", {"original_line": rec.original.line, "edits": rec.edits, "jaccard": score})
        )
    for name, detail in rec.faults:
        if "near_duplicate_of" in detail and rec.original is not None:
            detail = {**detail, "near_duplicate_of": rec.original.line}
        entries.append((name, detail))
    return entries


def _inherited(entry: dict[str, Any]) -> bool:
    return "duplicate_of" in entry or "near_duplicate_of" in entry


def _counts(name: str, entry: dict[str, Any]) -> bool:
    """Whether an entry counts towards its planted rate (task PII is listed but not planted)."""
    if name == "pii":
        return any(item["origin"] == "planted" for item in entry["items"])
    return True
