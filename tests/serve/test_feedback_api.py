"""POST /v1/feedback: authenticated like chat calls, validated, on disk (fsync) before the 200."""

from __future__ import annotations

import asyncio
import json

import pytest

from flywheel.serve.feedback import read_score
from flywheel.serve.responses import ApiError


def test_feedback_is_authenticated_validated_and_durable_before_the_answer(make_harness) -> None:
    harness = make_harness(environ={"FLYWHEEL_API_KEYS": "k1"})
    auth = {"authorization": "Bearer k1"}
    on_disk: list[list[dict]] = []

    def lines() -> list[dict]:
        files = sorted((harness.spool_dir / ".feedback").glob("feedback-*.jsonl"))
        return [json.loads(line) for path in files for line in path.read_text().splitlines()]

    async def scenario() -> dict[str, tuple[int, dict]]:
        async with harness.running(), harness.http() as http:
            good = {"request_id": "abc123", "score": "down", "correction": "billing", "comment": "wrong"}
            cases = {}
            cases["ok"] = await http.post("/v1/feedback", json=good, headers=auth)
            on_disk.append(lines())  # after the 200, before shutdown: already written and fsynced
            cases["up"] = await http.post(
                "/v1/feedback", json={"request_id": "x", "score": 0.5}, headers=auth
            )
            cases["no_key"] = await http.post("/v1/feedback", json=good)
            cases["bad_score"] = await http.post("/v1/feedback", json={**good, "score": 3}, headers=auth)
            cases["no_id"] = await http.post("/v1/feedback", json={"score": 1}, headers=auth)
            cases["bad_correction"] = await http.post(
                "/v1/feedback", json={**good, "correction": 5}, headers=auth
            )
            cases["not_json"] = await http.post("/v1/feedback", content=b"{nope", headers=auth)
            return {name: (r.status_code, r.json()) for name, r in cases.items()}

    results = asyncio.run(scenario())
    assert {name: status for name, (status, _) in results.items()} == {
        "ok": 200, "up": 200, "no_key": 401, "bad_score": 400, "no_id": 400, "bad_correction": 400,
        "not_json": 400,
    }  # fmt: skip
    assert results["ok"][1] | {"id": None} == {
        "id": None,
        "request_id": "abc123",
        "score": -1.0,
        "status": "recorded",
    }
    assert results["bad_score"][1]["error"]["param"] == "score"
    (first,) = on_disk[0]
    assert first["id"] == results["ok"][1]["id"] and first["correction"] == "billing"
    assert first["client_id"].startswith("key-") and first["flywheel_feedback"] == 1
    assert [line["score"] for line in lines()] == [-1.0, 0.5]
    assert harness.spool_lines() == []  # feedback is not traffic: the capture spool holds no line of it


@pytest.mark.parametrize(
    ("value", "score"),
    [("up", 1.0), ("thumbs_down", -1.0), ("👍", 1.0), (True, 1.0), (False, -1.0), (-0.25, -0.25)],
)
def test_scores_read_thumbs_and_numbers(value, score) -> None:
    assert read_score(value) == score


@pytest.mark.parametrize("value", [None, "meh", 1.5, float("nan"), [1]])
def test_other_scores_are_refused(value) -> None:
    with pytest.raises(ApiError):
        read_score(value)
