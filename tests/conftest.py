"""Shared fixtures. Tests never touch the network: HF caches and Prefect state live under tmp dirs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import orjson
import pytest

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="flywheel-tests-"))
os.environ.setdefault("HF_HOME", str(_SESSION_TMP / "hf"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", str(_SESSION_TMP / "prefect"))
os.environ.pop("FLYWHEEL_HOME", None)
os.environ.pop("FLYWHEEL_CONFIG", None)


def chat_record(
    i: int, answer: str = "billing", *, content: str | None = None, prompt_tokens: int = 10, **extra: object
) -> dict:
    """A minimal valid OpenAI request/response log record (`extra` replaces top-level fields)."""
    question = f"ticket {i}" if content is None else content
    record = {
        "request": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": question}]},
        "response": {
            "model": "gpt-4o-mini",
            "choices": [{"message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1},
        },
        "timestamp": 1_700_000_000 + i,
        "client_id": "c1",
    }
    record.update(extra)
    return record


def write_jsonl(path: Path, records: list[dict | bytes]) -> Path:
    with path.open("wb") as handle:
        for record in records:
            handle.write((record if isinstance(record, bytes) else orjson.dumps(record)) + b"\n")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture(scope="session")
def demo_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small set of demo traffic (three workloads), written once per test session."""
    from flywheel.demo import generate_demo_traffic

    out = tmp_path_factory.mktemp("demo")
    generate_demo_traffic(out, seed=5, size=260)
    return out
