"""Teacher labeling throughput against the local fake OpenAI server.

The server (flywheel.testing.fake_openai, its own process so it does not share the GIL with the
client) answers every request after a fixed latency. With concurrency C and latency L no client can
exceed C / L requests per second; this bench relabels N classification items through the full
pipeline (rate limiter, retries, budget, cache lookups, journaled batched warehouse writes, labels,
ledger) and prints the achieved rate as a fraction of that bound (target >= 0.85). A second run over
the same items must make 0 calls (all cached). For context it also times the bare openai client
(no pipeline) against the same server: on a small shared machine that client is the ceiling.

    .venv/bin/python bench/label.py [--items 2000] [--concurrency 32] [--latency-s 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

from flywheel.config import TeacherConfig, WorkloadConfig  # noqa: E402
from flywheel.pricing import PriceCatalog  # noqa: E402
from flywheel.records import Example  # noqa: E402
from flywheel.store.db import Warehouse  # noqa: E402
from flywheel.teacher import label_examples, make_client  # noqa: E402

LABELS = ["billing", "shipping", "refund", "technical_issue", "account_access", "cancellation"]
SYSTEM = "You are a support router. Answer with exactly one label."


def make_examples(n: int) -> list[Example]:
    return [
        Example(
            example_id=f"bench-{i}",
            workload_id="support",
            messages=[
                {"role": "system", "content": SYSTEM},
                {
                    "role": "user",
                    "content": f"Ticket {i}: a question about {LABELS[i % len(LABELS)]}, please help",
                },
            ],
            target={},
        )
        for i in range(n)
    ]


def start_server(latency_s: float) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "flywheel.testing.fake_openai", "--latency-s", str(latency_s)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    base_url = process.stdout.readline().strip()
    if not base_url.startswith("http"):
        process.kill()
        raise RuntimeError("the fake OpenAI server did not start")
    return process, base_url


def bare_client_rate(base_url: str, items: int, concurrency: int) -> float:
    """Requests/s of AsyncOpenAI alone (same payloads, same concurrency): the client's own ceiling."""
    import openai

    async def run() -> float:
        client = openai.AsyncOpenAI(api_key="bench", base_url=base_url, max_retries=0)
        slots = asyncio.Semaphore(concurrency)
        payloads = [{"model": "fake-teacher", "messages": e.messages} for e in make_examples(items)]

        async def one(payload: dict) -> None:
            async with slots:
                await client.post("/chat/completions", body=payload, cast_to=bytes)

        await asyncio.gather(*(one(p) for p in payloads[:concurrency]))
        started = time.perf_counter()
        await asyncio.gather(*(one(p) for p in payloads))
        elapsed = time.perf_counter() - started
        await client.close()
        return items / elapsed

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-s", type=float, default=0.1)
    args = parser.parse_args()
    bound = args.concurrency / args.latency_s
    workload = WorkloadConfig(id="support", task="classification", labels=LABELS)
    prices = PriceCatalog.load({"fake-teacher": {"input": 0.15, "output": 0.60}})
    examples = make_examples(args.items)
    process, base_url = start_server(args.latency_s)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warehouse = Warehouse(Path(tmp) / "warehouse.duckdb")
            warehouse.ensure_schema()  # a real warehouse exists before labeling (ingest created it)
            teacher = TeacherConfig(base_url=base_url, model="fake-teacher", concurrency=args.concurrency)
            with make_client(teacher, {"OPENAI_API_KEY": "bench"}) as client:
                label_examples(
                    make_examples(args.concurrency),
                    workload,
                    "relabel",
                    client=client,
                    warehouse=Warehouse(Path(tmp) / "warmup.duckdb"),
                    prices=prices,
                )
                started, cpu_started = time.perf_counter(), time.process_time()
                first = label_examples(
                    examples, workload, "relabel", client=client, warehouse=warehouse, prices=prices
                )
                seconds = time.perf_counter() - started
                cpu_ms = (time.process_time() - cpu_started) * 1000 / args.items
                started = time.perf_counter()
                second = label_examples(
                    examples, workload, "relabel", client=client, warehouse=warehouse, prices=prices
                )
                rerun_seconds = time.perf_counter() - started
        cpu_started = time.process_time()
        bare = bare_client_rate(base_url, args.items, args.concurrency)
        bare_cpu_ms = (time.process_time() - cpu_started) * 1000 / (args.items + args.concurrency)
    finally:
        process.kill()
        process.wait()
    rate = first.labeled / seconds
    print(
        f"items={args.items} concurrency={args.concurrency} latency={args.latency_s * 1000:.0f}ms "
        f"bound={bound:.0f} req/s"
    )
    print(
        f"first run:  labeled={first.labeled} calls={first.calls} failed={first.failed} "
        f"{seconds:.2f}s {rate:.1f} req/s  client CPU {cpu_ms:.2f} ms/item  cost=${first.cost_usd:.6f}"
    )
    print(
        f"second run: labeled={second.labeled} cached={second.cached} calls={second.calls} "
        f"{rerun_seconds:.2f}s"
    )
    print(
        f"bare openai client: {bare:.1f} req/s (ratio {bare / bound:.3f})  CPU {bare_cpu_ms:.2f} ms/request"
    )
    print(f"ratio={rate / bound:.3f} (target >= 0.85)")
    what = (
        f"label {args.items:,} items, {args.latency_s * 1000:.0f} ms latency, concurrency {args.concurrency}"
    )
    figure("label", what, round(rate, 1), "req/s", baseline=round(bound, 1), ratio=round(rate / bound, 3),
           target=">= 0.85", passed=rate / bound >= 0.85)  # fmt: skip
    figure("label", "bare openai client, same server", round(bare, 1), "req/s", baseline=round(bound, 1),
           ratio=round(bare / bound, 3))  # fmt: skip
    figure("label", "re-run of the same items (cache)", round(rerun_seconds, 2), "s", target="0 calls",
           passed=second.calls == 0)  # fmt: skip


if __name__ == "__main__":
    main()
