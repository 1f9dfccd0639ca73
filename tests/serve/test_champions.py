from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

from flywheel.records import Example
from flywheel.serve.champions import ChampionWatcher, read_manifest
from tests.serve.conftest import ScriptedStudent, serve_with_lifespan, write_manifest


def example(i: int = 0) -> Example:
    return Example(
        example_id=str(i), workload_id="support", messages=[{"role": "user", "content": "t"}], target={}
    )


def student(name: str, delay_s: float = 0.0) -> ScriptedStudent:
    return ScriptedStudent(lambda text: (name, 0.9), name=name, delay_s=delay_s)


def bump(path: Path) -> None:
    """Make sure a rewrite within the same clock tick still changes the file's stat."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def test_manifest_states(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"support": "a", "orders": "gone", "broken": "b"})
    (tmp_path / "models" / "gone").rmdir()

    def loader(path: Path) -> ScriptedStudent:
        if path.name == "b":
            raise OSError("weights are corrupt")
        return student(path.name)

    async def scenario() -> None:
        watcher = ChampionWatcher(tmp_path / "champions.json", loader=loader)
        await watcher.refresh()
        assert watcher.lookup("support").reason == "champion_loading"
        await watcher.wait_loaded()
        assert watcher.lookup("support").champion.model_id == "a"
        assert watcher.lookup("orders").reason == "champion_missing"
        assert watcher.lookup("broken").reason == "champion_load_failed"
        assert watcher.lookup("chat").reason == "no_champion"
        assert watcher.snapshot()["orders"] == {
            "model_id": "gone",
            "serving": None,
            "loading": False,
            "problem": "champion_missing",
        }

    asyncio.run(scenario())


def test_hot_swap_keeps_in_flight_requests_on_the_old_champion(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"support": "v1"})
    load_started, release_load = threading.Event(), threading.Event()

    def loader(path: Path) -> ScriptedStudent:
        if path.name == "v2":
            load_started.set()
            release_load.wait(5)  # a slow load: the old champion must keep serving meanwhile
        return student(path.name, delay_s=0.05)

    async def scenario() -> list[str]:
        watcher = ChampionWatcher(tmp_path / "champions.json", loader=loader, max_wait_ms=1)
        await watcher.refresh()
        await watcher.wait_loaded()
        old = watcher.lookup("support").champion
        in_flight = [asyncio.create_task(old.batcher.submit(example(i))) for i in range(4)]
        write_manifest(tmp_path, {"support": "v2"})
        bump(tmp_path / "champions.json")
        assert await watcher.refresh()
        await asyncio.to_thread(load_started.wait, 5)
        during = watcher.lookup("support").champion.model_id
        release_load.set()
        await watcher.wait_loaded()
        after = watcher.lookup("support").champion
        answers = [r.prediction.message["content"] for r in await asyncio.gather(*in_flight)]
        fresh = await after.batcher.submit(example(9))
        return [during, after.model_id, *answers, fresh.prediction.message["content"]]

    assert asyncio.run(scenario()) == ["v1", "v2", "v1", "v1", "v1", "v1", "v2"]


def test_rollback_missing_artifact_and_removal(tmp_path: Path) -> None:
    write_manifest(tmp_path, {"support": "v1"})
    manifest = tmp_path / "champions.json"

    async def scenario() -> list[str | None]:
        watcher = ChampionWatcher(manifest, loader=lambda p: student(p.name))
        seen = []
        for champions in ({"support": "v1"}, {"support": "v2"}, {"support": "v1"}, {}):
            write_manifest(tmp_path, champions)
            bump(manifest)
            await watcher.refresh()
            await watcher.wait_loaded()
            lookup = watcher.lookup("support")
            seen.append(lookup.champion.model_id if lookup.champion else lookup.reason)
        write_manifest(tmp_path, {"support": "v3"})
        (tmp_path / "models" / "v3").rmdir()
        bump(manifest)
        await watcher.refresh()
        seen.append(watcher.lookup("support").reason)
        manifest.write_text("{not json")  # a broken manifest changes nothing
        bump(manifest)
        await watcher.refresh()
        seen.append(watcher.lookup("support").reason)
        return seen

    assert asyncio.run(scenario()) == [
        "v1",
        "v2",
        "v1",
        "no_champion",
        "champion_missing",
        "champion_missing",
    ]


def test_relative_and_absolute_paths(tmp_path: Path) -> None:
    manifest = tmp_path / "champions.json"
    manifest.write_text(
        json.dumps({"a": {"model_id": "m1", "path": "models/x"}, "b": {"model_id": "m2", "path": "/abs/y"}})
    )
    entries = read_manifest(manifest)
    assert entries["a"].path == tmp_path / "models" / "x" and str(entries["b"].path) == "/abs/y"


def test_server_picks_up_a_promotion_without_restart(make_harness) -> None:
    import openai

    v1 = student("billing")
    harness = make_harness({"support": v1})
    v2 = student("refund")
    harness.students["support-v2"] = v2
    loader_targets = {"support-v1": v1, "support-v2": v2}
    harness.app.state.champions._loader = lambda path: loader_targets[path.name]
    messages = [{"role": "user", "content": "ticket"}]
    with serve_with_lifespan(harness.app) as base_url:
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
        answers = set()
        deadline = time.monotonic() + 10
        promoted = False
        while time.monotonic() < deadline and "refund" not in answers:
            response = client.chat.completions.create(model="support", messages=messages)
            answers.add(
                response.choices[0].message.content if response.model.startswith("support-") else "teacher"
            )
            if "billing" in answers and not promoted:
                write_manifest(harness.home, {"support": "support-v2"})
                promoted = True
            time.sleep(0.02)
    assert answers >= {"billing", "refund"}
    assert all(line["response"].get("choices") for line in harness.spool_lines())  # no request failed
