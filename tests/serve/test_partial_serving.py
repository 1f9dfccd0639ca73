"""A partially promoted champion: serve applies its calibrated threshold and claim rule from the
champions manifest (serve.thresholds still wins), and rejects a manifest with bad cascade fields."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from flywheel.serve.champions import read_manifest
from tests.serve.conftest import ScriptedStudent


def tool_student() -> ScriptedStudent:
    """A tool call, sure ("order") or unsure ("maybe"); a sure text reply to anything else."""

    def answer(text: str) -> tuple[dict[str, Any] | str, float]:
        call = {"id": "c1", "type": "function",
                "function": {"name": "get_order_status", "arguments": '{"order_id": "A-1"}'}}  # fmt: skip
        if "maybe" in text:
            return {"role": "assistant", "content": None, "tool_calls": [call]}, 0.6
        if "order" in text:
            return {"role": "assistant", "content": None, "tool_calls": [call]}, 0.9
        return "hello there", 0.95

    return ScriptedStudent(answer)


def cascade_manifest(home: Path, **fields: Any) -> None:
    path = home / "champions.json"
    manifest = json.loads(path.read_text())
    manifest["assistant"] |= fields
    path.write_text(json.dumps(manifest))


def ask(harness: Any, texts: list[str]) -> list[tuple[str, str | None]]:
    async def scenario() -> list[tuple[str, str | None]]:
        async with harness.running(), harness.http() as http:
            out = []
            for text in texts:
                tools = [{"type": "function", "function": {"name": "get_order_status"}}]
                body = {"model": "assistant", "messages": [{"role": "user", "content": text}], "tools": tools}
                response = await http.post(
                    "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"}
                )
                assert response.status_code == 200, response.text
                out.append(
                    (
                        response.headers["x-flywheel-served-by"],
                        response.headers.get("x-flywheel-fallback-reason"),
                    )
                )
            return out

    return asyncio.run(scenario())


def test_calibrated_threshold_and_tool_only_claims(make_harness) -> None:  # type: ignore[no-untyped-def]
    harness = make_harness({"assistant": tool_student()})
    cascade_manifest(harness.home, threshold=0.7, coverage=0.4, claims="tool_calls")
    served = ask(harness, ["where is my order", "maybe an order", "hi"])
    assert served == [("student", None), ("teacher", "low_confidence"), ("teacher", "text_turn")]


def test_without_cascade_fields_the_default_threshold_and_every_turn(make_harness) -> None:  # type: ignore[no-untyped-def]
    harness = make_harness({"assistant": tool_student()})  # confidence_threshold 0.5 by default
    assert ask(harness, ["where is my order", "maybe an order", "hi"]) == [("student", None)] * 3


def test_serve_thresholds_override_the_calibrated_one(make_harness) -> None:  # type: ignore[no-untyped-def]
    harness = make_harness({"assistant": tool_student()}, serve={"thresholds": {"assistant": 0.5}})
    cascade_manifest(harness.home, threshold=0.7, coverage=0.4, claims="tool_calls")
    assert ask(harness, ["maybe an order"]) == [("student", None)]


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"threshold": 1.5}, "threshold must be a number"), ({"claims": "text"}, "claims must be one of")],
)
def test_bad_cascade_fields_are_a_bad_manifest(tmp_path: Path, fields: dict, message: str) -> None:
    path = tmp_path / "champions.json"
    path.write_text(json.dumps({"w": {"model_id": "m", "path": "models/m", **fields}}))
    with pytest.raises(ValueError, match=message):
        read_manifest(path)
    path.write_text(
        json.dumps({"w": {"model_id": "m", "path": "models/m", "threshold": 0.3, "claims": "tool_calls"}})
    )
    entry = read_manifest(path)["w"]
    assert (entry.threshold, entry.claims, entry.coverage) == (0.3, "tool_calls", None)
