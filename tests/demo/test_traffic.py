"""Demo traffic generator: determinism, readability by the OpenAI connector, and planted ground truth."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from datetime import UTC
from itertools import combinations
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import connectors
from connectors import ReadContext
from flywheel.config import load_config
from flywheel.demo import RATES, DemoManifest, demo_config_path, generate_demo_traffic
from flywheel.demo.assistant import TOOL_NAMES, TOOLS
from flywheel.demo.common import BASE_TS, CLIENTS, DAYS, luhn_ok
from flywheel.demo.orders import ORDER_SCHEMA
from flywheel.demo.similarity import jaccard, similar_pairs
from flywheel.demo.support import LABEL_PARSER_REGEX, LABEL_WEIGHTS, LABELS
from flywheel.demo.traffic import RESPONSE_FAULTS
from flywheel.records import Interaction, Rejected

SIZE = 1500
WORKLOADS = ("support-routing", "order-extraction", "tool-assistant")
EMAIL_RE = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
CARD_RE = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
PHONE_RE = re.compile(r"(?:\+\d{1,2} ?)?(?:\(\d{3}\) ?|\d{2,4}[ .-])\d{3,4}[ .-]?\d{3,4}")
REJECT_REASON = {
    "truncated_json": "truncated_json",
    "not_json": "invalid_json",
    "invalid_utf8": "invalid_utf8",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoManifest:
    return generate_demo_traffic(tmp_path_factory.mktemp("demo"), seed=7, size=SIZE)


@pytest.fixture(scope="module")
def parsed(demo: DemoManifest) -> dict[str, dict[int, Interaction | Rejected]]:
    """workload -> line -> what the openai connector made of it."""
    reader = connectors.REGISTRY["openai"].read
    out = {}
    for workload_id, manifest in demo.workloads.items():
        out[workload_id] = {
            int(item.source_ref.rsplit(":", 1)[1]): item for item in reader(manifest.path, ReadContext())
        }
    return out


def _raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\n")[:-1]


def _user_text(item: Interaction) -> str:
    return item.request["messages"][-1]["content"]


def _answer(task: str, item: Interaction) -> Any:
    """The answer a logged response states, in the gold sidecar's form (None if it states none)."""
    message = item.response.get("message") or {}
    if task == "classification":
        return message.get("content")
    if task == "extraction":
        try:
            return json.loads(message.get("content") or "")
        except json.JSONDecodeError:
            return None
    if message.get("tool_calls"):
        call = message["tool_calls"][0]["function"]
        return {"type": "tool_call", "name": call["name"], "arguments": json.loads(call["arguments"])}
    return {"type": "text", "content": message.get("content")}


def _epoch(item: Interaction) -> float:
    assert item.ts is not None
    return item.ts.replace(tzinfo=UTC).timestamp()  # canonical ts is naive UTC


def _prompt_chars(request: dict[str, Any]) -> int:
    chars = sum(len(m.get("content") or "") for m in request["messages"])
    return chars + sum(len(json.dumps(request[k])) for k in ("tools", "response_format") if k in request)


def _lines(demo: DemoManifest, workload_id: str, fault: str, *, planted_only: bool = False) -> set[int]:
    entries = demo.workloads[workload_id].faults[fault]
    return {
        e["line"] for e in entries if not planted_only or not {"duplicate_of", "near_duplicate_of"} & set(e)
    }


# ------------------------------------------------------------------------------------------ determinism


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    first = _files(generate_demo_traffic(tmp_path / "a", seed=3, size=300).out_dir)
    second = _files(generate_demo_traffic(tmp_path / "b", seed=3, size=300).out_dir)
    other = _files(generate_demo_traffic(tmp_path / "c", seed=4, size=300).out_dir)
    expected = {f"{w}{suffix}" for w in WORKLOADS for suffix in (".jsonl", ".gold.jsonl")} | {"planted.json"}
    assert set(first) == expected
    assert first == second
    assert all(first[name] != other[name] for name in expected)


def test_manifest_round_trips_and_small_sizes_work(demo: DemoManifest, tmp_path: Path) -> None:
    assert DemoManifest.load(demo.out_dir) == demo
    assert list(demo.workloads) == list(WORKLOADS)
    assert demo.files == {w: demo.out_dir / f"{w}.jsonl" for w in WORKLOADS}
    for size in (1, 12):
        small = generate_demo_traffic(tmp_path / str(size), seed=1, size=size)
        for manifest in small.workloads.values():
            assert len(_raw_lines(manifest.path)) == manifest.lines >= size
    with pytest.raises(ValueError):
        generate_demo_traffic(tmp_path / "zero", size=0)
    no_errors = generate_demo_traffic(tmp_path / "rates", seed=1, size=200, rates={"error": 0.0})
    assert all(not m.faults["error"] for m in no_errors.workloads.values())


# --------------------------------------------------------------------------------------- readability


def test_every_line_reads_as_interaction_or_rejected(demo: DemoManifest, parsed: dict) -> None:
    for workload_id, manifest in demo.workloads.items():
        items = parsed[workload_id]
        assert (
            sorted(items)
            == list(range(1, manifest.lines + 1))
            == list(range(1, len(_raw_lines(manifest.path)) + 1))
        )
        malformed = {e["line"]: e["kind"] for e in manifest.faults["malformed_line"]}
        assert set(malformed.values()) == set(REJECT_REASON)
        for line, item in items.items():
            if line in malformed:
                assert isinstance(item, Rejected), line
                assert item.reason == REJECT_REASON[malformed[line]], (line, item.reason)
                continue
            assert isinstance(item, Interaction), (line, getattr(item, "detail", None))
            assert item.workload_id == workload_id
            assert item.client_id in CLIENTS
            assert item.model and item.model.startswith(("gpt-4o-mini", "gpt-4o"))
            assert item.latency_ms and item.latency_ms > 0
            assert BASE_TS <= _epoch(item) < BASE_TS + DAYS * 86_400
            if item.status == "ok":
                assert item.prompt_tokens and item.completion_tokens


def test_timestamps_tokens_models_and_clients(demo: DemoManifest, parsed: dict) -> None:
    for workload_id in WORKLOADS:
        ok = [i for i in parsed[workload_id].values() if isinstance(i, Interaction)]
        stamps = [_epoch(i) for i in ok]
        assert 12 * 86_400 < max(stamps) - min(stamps) <= DAYS * 86_400
        answered = [i for i in ok if i.status == "ok"]
        chars = sum(_prompt_chars(i.request) for i in answered)
        assert 0.8 < sum(i.prompt_tokens for i in answered) / (chars / 4) < 1.2  # ~4 characters a token
        models = Counter(i.request["model"] for i in ok)
        assert set(models) == {"gpt-4o-mini", "gpt-4o"} and 0.05 < models["gpt-4o"] / len(ok) < 0.3
        clients = Counter(i.client_id for i in ok)
        assert len(clients) == len(CLIENTS) == 8
        top, top_count = clients.most_common(1)[0]
        assert top == "acme-helpdesk" and 0.42 < top_count / len(ok) < 0.58


# ---------------------------------------------------------------------------------------- planted faults


def test_planted_counts_match_rates(demo: DemoManifest) -> None:
    for workload_id, manifest in demo.workloads.items():
        for fault, rate in RATES.items():
            planted = len(_lines(demo, workload_id, fault, planted_only=True))
            if fault == "pii":
                planted = sum(
                    1
                    for e in manifest.faults["pii"]
                    if not {"duplicate_of", "near_duplicate_of"} & set(e)
                    and any(item["origin"] == "planted" for item in e["items"])
                )
            assert planted == manifest.counts[fault], (workload_id, fault)
            assert abs(planted - rate * SIZE) <= max(1.0, 0.05 * rate * SIZE), (workload_id, fault, planted)
        # At most one answer-replacing fault per line.
        per_line = Counter(line for fault in RESPONSE_FAULTS for line in _lines(demo, workload_id, fault))
        assert max(per_line.values()) == 1
        assert manifest.lines == SIZE + sum(
            manifest.counts[f] for f in ("exact_duplicate", "near_duplicate", "malformed_line")
        )


def test_duplicates(demo: DemoManifest, parsed: dict) -> None:
    for workload_id, manifest in demo.workloads.items():
        raw = _raw_lines(manifest.path)
        gold = manifest.gold()
        for entry in manifest.faults["exact_duplicate"]:
            assert entry["original_line"] < entry["line"]
            assert raw[entry["line"] - 1] == raw[entry["original_line"] - 1]
        # Content-addressed ids collide exactly on the planted exact duplicates (what ingestion dedups).
        ids = Counter(i.id for i in parsed[workload_id].values() if isinstance(i, Interaction))
        assert sum(ids.values()) - len(ids) == len(manifest.faults["exact_duplicate"])
        skip = manifest.lines_with("exact_duplicate") | manifest.lines_with("malformed_line")
        assert len(
            {raw[i - 1] for i in range(1, manifest.lines + 1) if i not in skip}
        ) == manifest.lines - len(skip)
        for entry in manifest.faults["near_duplicate"]:
            if "duplicate_of" in entry:
                continue
            near, original = parsed[workload_id][entry["line"]], parsed[workload_id][entry["original_line"]]
            a, b = _user_text(original), _user_text(near)
            assert a != b and entry["edits"]
            matcher = difflib.SequenceMatcher(None, a.lower(), b.lower())
            changed = sum(
                max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"
            )
            assert changed <= 15 and matcher.ratio() > 0.75, (a, b)  # small edits (case changes aside)
            assert entry["jaccard"] == round(jaccard(a, b), 4)
            assert gold[entry["line"]]["answer"] == gold[entry["original_line"]]["answer"]
            assert _answer(manifest.task, near) == gold[entry["line"]]["answer"]
            assert near.request["messages"][0] == original.request["messages"][0]


def test_incidental_near_duplicates_are_exact(demo: DemoManifest, parsed: dict) -> None:
    planted = json.loads(demo.planted_path.read_text())
    assert planted["near_duplicate_measure"]["threshold"] == 0.8
    for workload_id, manifest in demo.workloads.items():
        # Content-addressed ids collide exactly on the planted exact duplicates (what ingestion dedups).
        ids = Counter(i.id for i in parsed[workload_id].values() if isinstance(i, Interaction))
        assert sum(ids.values()) - len(ids) == len(manifest.faults["exact_duplicate"])
        skip = manifest.lines_with("exact_duplicate") | manifest.lines_with("malformed_line")
        texts = {line: _user_text(item) for line, item in parsed[workload_id].items() if line not in skip}
        pairs = {(a, b) for a, b, _ in similar_pairs(texts)}
        planted_pairs = {
            tuple(sorted((e["line"], e["original_line"]))) for e in manifest.faults["near_duplicate"]
        }
        recorded = {
            tuple(e["lines"]) for e in planted["workloads"][workload_id]["incidental_near_duplicates"]
        }
        assert recorded == pairs - planted_pairs
    # The prefix-filtered search finds exactly what brute force finds.
    sample = dict(list(texts.items())[:250])
    brute = {(a, b) for a, b in combinations(sorted(sample), 2) if jaccard(sample[a], sample[b]) >= 0.8}
    assert {(a, b) for a, b, _ in similar_pairs(sample)} == brute


def test_response_faults_are_what_they_say(demo: DemoManifest, parsed: dict) -> None:
    for workload_id, manifest in demo.workloads.items():
        items = parsed[workload_id]
        assert all(items[line].status == "error" for line in manifest.lines_with("error"))
        assert sum(1 for i in items.values() if isinstance(i, Interaction) and i.status == "error") == len(
            manifest.lines_with("error")
        )
        for line in manifest.lines_with("refusal"):
            message = items[line].response["message"]
            assert (message.get("content") or message.get("refusal")).startswith("I'm sorry")
        for line in manifest.lines_with("empty"):
            assert items[line].response["message"]["content"] == ""
            assert not items[line].response["message"].get("tool_calls")
        for line in manifest.lines_with("truncated"):
            assert items[line].response["finish_reason"] == "length"
        finish = Counter(
            i.response.get("finish_reason") for i in items.values() if isinstance(i, Interaction)
        )
        assert finish["length"] == len(manifest.lines_with("truncated"))
        for line in manifest.lines_with("streamed"):
            raw = json.loads(_raw_lines(manifest.path)[line - 1])
            assert isinstance(raw["response"], list) and raw["request"]["stream"] is True
            assert raw["response"][0]["object"] == "chat.completion.chunk"
        down = {
            line
            for line, i in items.items()
            if isinstance(i, Interaction) and i.feedback == {"rating": "down"}
        }
        assert down == manifest.lines_with("negative_feedback")


def test_wrong_and_malformed_answers(demo: DemoManifest, parsed: dict) -> None:
    validator = jsonschema.Draft202012Validator(ORDER_SCHEMA)
    for workload_id, manifest in demo.workloads.items():
        items, gold = parsed[workload_id], manifest.gold()
        for entry in manifest.faults["wrong_answer"]:
            answer = _answer(manifest.task, items[entry["line"]])
            assert answer == entry["answer"] != gold[entry["line"]]["answer"] == entry["correct"]
        kinds = Counter()
        for entry in manifest.faults["malformed_answer"]:
            message = items[entry["line"]].response["message"]
            kinds[entry["kind"]] += 1
            if manifest.task == "classification":
                assert message["content"] not in LABELS
            elif manifest.task == "extraction":
                try:
                    errors = list(validator.iter_errors(json.loads(message["content"])))
                except json.JSONDecodeError:
                    assert entry["kind"] == "invalid_json"
                else:
                    assert entry["kind"] == "schema_violation" and errors
            else:
                call = message["tool_calls"][0]["function"]
                if entry["kind"] == "unknown_tool":
                    assert call["name"] not in TOOL_NAMES
                    continue
                try:
                    args = json.loads(call["arguments"])
                except json.JSONDecodeError:
                    assert entry["kind"] == "unparseable_arguments"
                else:
                    assert entry["kind"] == "missing_argument"
                    tool = next(t for t in TOOLS if t["function"]["name"] == call["name"])
                    assert set(tool["function"]["parameters"]["required"]) - set(args)
        assert len(kinds) >= (1 if manifest.task == "classification" else 2)


def test_clean_lines_agree_with_gold(demo: DemoManifest, parsed: dict) -> None:
    validator = jsonschema.Draft202012Validator(ORDER_SCHEMA)
    for workload_id, manifest in demo.workloads.items():
        gold = manifest.gold()
        assert sorted(gold) == list(range(1, manifest.lines + 1))
        faulty = set().union(*(manifest.lines_with(f) for f in (*RESPONSE_FAULTS, "malformed_line")))
        checked = 0
        for line, item in parsed[workload_id].items():
            assert set(gold[line]["faults"]) == {f for f in RATES if line in manifest.lines_with(f)}
            if line in faulty:
                continue
            answer = _answer(manifest.task, item)
            assert answer == gold[line]["answer"], line
            if manifest.task == "extraction":
                validator.validate(answer)
            checked += 1
        assert checked > 0.85 * SIZE


def test_label_skew(demo: DemoManifest) -> None:
    manifest = demo.workloads["support-routing"]
    original = manifest.lines_with("exact_duplicate") | manifest.lines_with("near_duplicate")
    labels = Counter(
        g["answer"]
        for line, g in manifest.gold().items()
        if line not in original and line not in manifest.lines_with("malformed_line")
    )
    total = sum(labels.values())
    assert set(labels) == set(LABELS) and len(LABELS) >= 10
    assert labels.most_common(1)[0][0] == "billing" and 0.26 < labels["billing"] / total < 0.34
    assert min(labels.values()) / total < 0.025
    assert LABEL_WEIGHTS["billing"] / sum(LABEL_WEIGHTS.values()) == pytest.approx(0.3)


def test_tool_assistant_records_text_and_calls(demo: DemoManifest) -> None:
    kinds = Counter(
        g["answer"]["type"] for g in demo.workloads["tool-assistant"].gold().values() if g["answer"]
    )
    assert 0.06 < kinds["text"] / sum(kinds.values()) < 0.2
    names = Counter(
        g["answer"].get("name") for g in demo.workloads["tool-assistant"].gold().values() if g["answer"]
    )
    assert set(names) - {None} == set(TOOL_NAMES)


# ------------------------------------------------------------------------------------------------- PII


def test_pii_is_planted_and_recorded(demo: DemoManifest, parsed: dict) -> None:
    for workload_id, manifest in demo.workloads.items():
        recorded = {e["line"]: e["items"] for e in manifest.faults["pii"]}
        kinds = Counter()
        for line, item in parsed[workload_id].items():
            if isinstance(item, Rejected):
                continue
            text = _user_text(item)
            values = recorded.get(line, [])
            for value in values:
                assert value["value"] in text
                kinds[value["kind"]] += value["origin"] == "planted"
                if value["kind"] == "card":
                    assert luhn_ok(re.sub(r"\D", "", value["value"]))
                if value["kind"] == "email":
                    assert EMAIL_RE.fullmatch(value["value"])
            # Nothing PII-shaped is in a user message without being listed.
            found = set(CARD_RE.findall(text)) | set(EMAIL_RE.findall(text))
            found |= set(PHONE_RE.findall(CARD_RE.sub(" ", text)))
            assert found <= {v["value"] for v in values}, (line, found, values)
            assert all(v["value"] in found for v in values), (line, values)
        assert set(manifest.faults["pii"][0]["items"][0]) == {"kind", "value", "origin"}
        assert kinds["card"] > 0
        # The long system prompt is identical across requests (a later stage prunes static prompt parts).
        systems = {
            i.request["messages"][0]["content"]
            for i in parsed[workload_id].values()
            if isinstance(i, Interaction)
        }
        assert len(systems) == 1 and len(systems.pop()) > 1000


def test_extraction_values_appear_in_message(demo: DemoManifest, parsed: dict) -> None:
    manifest = demo.workloads["order-extraction"]
    for line, row in manifest.gold().items():
        item = parsed["order-extraction"][line]
        if isinstance(item, Rejected):
            continue
        text, answer = _user_text(item), row["answer"]
        for field in ("order_id", "customer_name", "email", "phone", "delivery_city"):
            assert answer[field] is None or answer[field] in text, (line, field)
        for entry in answer["items"]:
            assert entry["sku"] in text and str(entry["quantity"]) in text
    for entry in manifest.faults["wrong_answer"]:
        if entry["kind"].startswith("hallucinated"):
            assert entry["answer"][entry["field"]] not in _user_text(
                parsed["order-extraction"][entry["line"]]
            )


# ---------------------------------------------------------------------------------------------- config


def test_demo_config_loads_and_matches_the_generator() -> None:
    path = demo_config_path()
    assert path.is_file() and path.name == "flywheel.demo.yaml"
    config = load_config(path)
    assert [w.id for w in config.workloads] == list(WORKLOADS)
    routing, extraction, tools = (config.workload(w) for w in WORKLOADS)
    assert (routing.task, extraction.task, tools.task) == ("classification", "extraction", "tool_call")
    assert routing.labels == LABELS
    assert routing.label_parser and routing.label_parser.regex == LABEL_PARSER_REGEX
    assert all(re.search(routing.label_parser.regex, label).group(1) == label for label in LABELS)
    assert extraction.json_schema == ORDER_SCHEMA
    assert tools.tools == TOOLS
    for workload in config.workloads:
        assert [(s.path, s.format) for s in workload.sources] == [
            (f"demo-data/{workload.id}.jsonl", "openai")
        ]
        kind = "encoder-classifier" if workload.task == "classification" else "encoder-extractor"
        assert [s.kind for s in workload.students] == [kind]
        assert workload.curation.eval_fraction == 0.2
    assert config.teacher.base_url is None
