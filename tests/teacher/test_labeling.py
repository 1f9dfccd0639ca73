"""Relabel and replay end to end against the fake OpenAI server over loopback HTTP."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from flywheel.store.db import Warehouse
from flywheel.teacher import label_examples, latest_labels
from flywheel.testing.oracles import answer_in_request_format, keyword_oracle, last_user_text
from tests.teacher.conftest import LABELS, PRICES, count, support_examples, support_workload, teacher


def test_flaky_endpoint_labels_every_item_exactly_once_and_rerun_makes_no_calls(warehouse: Warehouse) -> None:
    examples = support_examples(60)
    failures = {"failure_rate": 0.3, "hang_s": 1.0, "retry_after_s": 0.02}
    with teacher(keyword_oracle, app_options=failures, timeout_s=0.3, max_retries=8) as (client, app):
        first = label_examples(
            examples, support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
        )
        injected = {kind: app.state.stats[kind] for kind in ("429", "500", "timeout", "malformed")}
        completions_after_first = app.state.stats["completions"]
        second = label_examples(
            examples, support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
        )
        completions_after_rerun = app.state.stats["completions"]
    assert all(injected.values()), injected  # every failure kind really happened
    assert (first.labeled, first.failed, first.calls, first.stopped_reason) == (60, 0, 60, "completed")
    assert (second.labeled, second.cached, second.calls, second.cost_usd) == (60, 60, 0, 0.0)
    # the re-run sent nothing (the first run's count can exceed 60: under load a slow answer the
    # client had already timed out on still completes on the server)
    assert completions_after_rerun == completions_after_first >= 60
    rows = count(warehouse, "SELECT example_id, count(*) FROM labels GROUP BY ALL")
    assert len(rows) == 60 and {n for _, n in rows} == {1}
    labels = latest_labels(warehouse, "support")
    assert {eid: lab.label for eid, lab in labels.items()} == {e.example_id: e.label for e in examples}
    ledger = count(warehouse, "SELECT count(*), sum(usd), min(kind), max(kind) FROM cost_ledger")[0]
    assert (
        ledger[0] == 60
        and ledger[1] == pytest.approx(first.cost_usd)
        and ledger[2:] == ("labeling", "labeling")
    )
    runs = count(
        warehouse, "SELECT labeled, cached, calls, stopped_reason FROM label_runs ORDER BY started_at"
    )
    assert runs == [(60, 0, 60, "completed"), (60, 60, 0, "completed")]


def test_budget_stops_within_one_request_and_keeps_what_was_paid(warehouse: Warehouse) -> None:
    examples = support_examples(40)
    with teacher(keyword_oracle, concurrency=8) as (client, _):
        probe = label_examples(
            examples[:1], support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
        )
        per_call = probe.cost_usd
        max_usd = per_call * 12.5
        report = label_examples(
            examples[1:],
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
            max_usd=max_usd,
        )
    assert report.stopped_reason == "budget"
    assert report.cost_usd <= max_usd + 1e-12
    assert report.cost_usd > max_usd - 1.01 * per_call  # stopped within one request of the limit
    assert report.calls == report.labeled == 12 and report.skipped == 27
    assert count(warehouse, "SELECT count(*) FROM labels")[0][0] == 13
    assert count(warehouse, "SELECT stopped_reason FROM label_runs WHERE calls = 12")[0][0] == "budget"


def test_replay_labels_from_targets_for_free_and_relabel_wins(warehouse: Warehouse) -> None:
    examples = support_examples(6)
    examples[0].label = None  # derived from the target
    examples[1].target = {"role": "assistant", "content": "no idea"}
    examples[1].label = None
    replay = label_examples(
        examples, support_workload(), "replay", client=None, warehouse=warehouse, prices=PRICES
    )
    assert (replay.labeled, replay.failed, replay.calls, replay.cost_usd) == (5, 1, 0, 0.0)
    assert replay.failures == Counter({"label_not_in_set": 1})
    quarantined = count(warehouse, "SELECT source_ref, stage, reason FROM quarantine")
    assert quarantined == [("ex-1", "label", "label_not_in_set")]

    def contrarian(request: dict[str, Any]) -> Any:  # always answers "refund"
        return answer_in_request_format(request, "refund")

    with teacher(contrarian) as (client, _):
        label_examples(
            examples[:3], support_workload(), "relabel", client=client, warehouse=warehouse, prices=PRICES
        )
    best = latest_labels(warehouse, "support")
    assert {eid: (lab.mode, lab.label) for eid, lab in best.items()} == {
        "ex-0": ("relabel", "refund"),
        "ex-1": ("relabel", "refund"),
        "ex-2": ("relabel", "refund"),
        "ex-3": ("replay", "billing"),
        "ex-4": ("replay", "shipping"),
        "ex-5": ("replay", "refund"),
    }
    assert best["ex-3"].cost_usd == 0 and best["ex-3"].teacher_model is None


def test_k_votes_keep_the_majority_and_its_agreement_as_confidence(warehouse: Warehouse) -> None:
    calls: Counter[str] = Counter()

    def wavering(request: dict[str, Any]) -> Any:  # 2 of 3 samples say billing, one says refund
        text = last_user_text(request)
        calls[text] += 1
        return answer_in_request_format(request, "refund" if calls[text] == 2 else "billing")

    with teacher(wavering, k_votes=3, concurrency=1) as (client, app):
        report = label_examples(
            support_examples(2),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
        temperatures = {r["temperature"] for r in app.state.requests}
    assert report.calls == 6 and temperatures == {0.7}
    for label in latest_labels(warehouse, "support").values():
        assert label.label == "billing"
        assert label.confidence == pytest.approx(2 / 3)
        assert label.votes == {"billing": 2, "refund": 1}


def test_invalid_answer_is_retried_once_with_the_error_shown(warehouse: Warehouse) -> None:
    def sloppy(request: dict[str, Any]) -> str:
        if "invalid" in json.dumps(request["messages"][-1]):
            return "shipping"
        return "I think it is about shipping."  # not a label on its own

    no_schema = {"json_schema_support": False}
    with teacher(sloppy, app_options=no_schema, supports_json_schema=False) as (client, app):
        report = label_examples(
            support_examples(3),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
        sent = app.state.requests
    assert (report.labeled, report.calls) == (3, 6)
    retry = next(r for r in sent if len(r["messages"]) > 2)
    assert retry["messages"][-2] == {"role": "assistant", "content": "I think it is about shipping."}
    assert "label_not_in_set" in retry["messages"][-1]["content"]
    assert (
        "response_format" not in sent[0] and "billing, shipping, refund" in sent[0]["messages"][0]["content"]
    )
    label = latest_labels(warehouse, "support")["ex-0"]
    assert label.target == {"role": "assistant", "content": "shipping"}
    assert label.cost_usd == pytest.approx(report.cost_usd / 3)


def test_endpoint_without_json_schema_falls_back_to_instructions(warehouse: Warehouse) -> None:
    with teacher(lambda r: LABELS[0], app_options={"json_schema_support": False}) as (client, app):
        report = label_examples(
            support_examples(4),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
        rejected = app.state.stats["400"]
    assert report.labeled == 4 and report.failed == 0
    assert 1 <= rejected <= 4  # concurrent first requests may each see the 400 once


def test_answers_that_stay_invalid_are_quarantined_with_their_reason(warehouse: Warehouse) -> None:
    with teacher(
        lambda r: "no idea", app_options={"json_schema_support": False}, supports_json_schema=False
    ) as (
        client,
        _,
    ):
        report = label_examples(
            support_examples(2),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
    assert (report.labeled, report.failed, report.calls) == (0, 2, 4)
    assert report.failures == Counter({"label_not_in_set": 2})
    assert count(warehouse, "SELECT reason, count(*) FROM quarantine GROUP BY ALL") == [
        ("label_not_in_set", 2)
    ]
    assert count(warehouse, "SELECT count(*) FROM cost_ledger")[0][0] == 4  # paid calls are still ledgered


def test_logprobs_are_kept_when_asked(warehouse: Warehouse) -> None:
    with teacher(keyword_oracle, logprobs_top_k=3) as (client, app):
        label_examples(
            support_examples(1),
            support_workload(),
            "relabel",
            client=client,
            warehouse=warehouse,
            prices=PRICES,
        )
        request = app.state.requests[0]
    assert request["logprobs"] is True and request["top_logprobs"] == 3
    logprobs = latest_labels(warehouse, "support")["ex-0"].logprobs
    assert logprobs and len(logprobs[0]["top"]) == 3
    assert "".join(entry["token"] for entry in logprobs) == '{"label": "billing"}'
