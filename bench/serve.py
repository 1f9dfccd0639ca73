"""Serving throughput: N concurrent OpenAI requests to `flywheel serve` vs raw batched generate.

1. Trains the demo support-routing `scratch-tiny` student for one short epoch (or takes --model-dir,
   any artifact `load_student` opens).
2. Raw: the same N prompts through that student in batches of --max-batch, timed twice: bare
   `model.generate` on pre-tokenized batches, and `student.predict` (tokenize + generate + parse).
3. Served: `flywheel serve` in a subprocess on loopback with the student as champion (confidence
   threshold 0, so the student answers everything it answers validly; the rest fall back to a local
   fake teacher), N concurrent `AsyncOpenAI` requests after a warm-up. Prints p50/p99 latency, req/s,
   errors, fallbacks, and served req/s divided by raw generate req/s (target >= 0.8).

    .venv/bin/python bench/serve.py [--requests 200] [--max-batch 16] [--max-wait-ms 10] [--threads 1]

Torch runs one thread by default: on a shared, busy 2-core machine two OpenMP threads collapse (raw
generate fell 5-15x when another process held a core), which makes any ratio meaningless. Raw and
served always use the same setting. The load generator is raw HTTP/1.1 on asyncio sockets: httpx and
the openai client spend several ms of CPU per call at 200 concurrent connections, CPU the server under
test then lacks on 2 cores (`--client openai` shows it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchlib import figure  # noqa: E402

from flywheel.config import StudentConfig, load_config  # noqa: E402
from flywheel.demo import demo_config_path, generate_demo_traffic  # noqa: E402
from flywheel.records import Example  # noqa: E402
from flywheel.testing.fake_openai import make_fake_openai_app, serve_in_thread  # noqa: E402
from flywheel.testing.oracles import keyword_oracle  # noqa: E402

WORKLOAD = "support-routing"
FLYWHEEL = Path(sys.executable).with_name("flywheel")


def train_student(train: list[Example], val: list[Example], out: Path) -> Path:
    from flywheel.train.candidate import train_candidate

    workload = load_config(demo_config_path()).workload(WORKLOAD)
    candidate = StudentConfig(name="scratch-tiny", kind="scratch", size="tiny", epochs=1.0)
    return train_candidate(
        candidate, workload, train, val, out_dir=out, snapshot_id=None, warehouse=None
    ).path


class RawStudent:
    """The same student in this process: bare batched generate and predict, batches as the server sees."""

    def __init__(self, model_dir: Path, examples: list[Example], max_batch: int) -> None:
        from flywheel.train.student import load_student

        self.student = load_student(model_dir, batch_size=max_batch)
        self.batches = [examples[i : i + max_batch] for i in range(0, len(examples), max_batch)]
        self.count = len(examples)
        self.encoded = [
            self.student.tokenizer(
                [self.student.prompt_text(e) for e in batch],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.student.max_prompt_tokens,
                add_special_tokens=False,
            )
            for batch in self.batches
        ]
        self.student.predict(self.batches[0])  # warm-up

    def generate_rps(self) -> tuple[float, float]:
        """(requests per wall second, requests per CPU second) of bare batched generate."""
        import torch

        student = self.student
        cpu_started, started = time.process_time(), time.perf_counter()
        with torch.inference_mode():
            for inputs in self.encoded:
                student.model.generate(
                    **inputs,
                    max_new_tokens=student.max_new_tokens,
                    do_sample=False,
                    output_scores=True,
                    return_dict_in_generate=True,
                    pad_token_id=student.tokenizer.pad_token_id,
                )
        return self.count / (time.perf_counter() - started), self.count / (time.process_time() - cpu_started)

    def predict_rps(self) -> float:
        """Requests per wall second of student.predict (tokenize + generate + parse)."""
        started = time.perf_counter()
        for batch in self.batches:
            self.student.predict(batch)
        return self.count / (time.perf_counter() - started)


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_server(home: Path, teacher_url: str, args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    workload = load_config(demo_config_path()).workload(WORKLOAD)
    config = {
        "teacher": {"base_url": teacher_url, "model": "gpt-4o-mini", "max_retries": 0},
        "workloads": [
            {
                "id": WORKLOAD,
                "task": workload.task,
                "labels": workload.labels,
                "label_parser": workload.label_parser.model_dump(exclude_none=True)
                if workload.label_parser
                else None,
            }
        ],
        "serve": {"confidence_threshold": 0.0, "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms},
    }
    (home / "flywheel.yaml").write_text(yaml.safe_dump(config))
    command = [str(FLYWHEEL), "--config", str(home / "flywheel.yaml"), "--home", str(home), "serve"]
    process = subprocess.Popen(
        [*command, "--port", "0", "--json", "--log-level", "warning"],
        stdout=subprocess.PIPE,
        env={**os.environ, "FLYWHEEL_API_KEYS": ""},
    )
    url = json.loads(process.stdout.readline())["url"]
    return process, url


async def wait_for_champion(url: str) -> None:
    import httpx

    base = url.removesuffix("/v1")
    async with httpx.AsyncClient() as http:
        for _ in range(600):
            try:
                health = (await http.get(f"{base}/health")).json()
                if health["champions"][WORKLOAD]["serving"]:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the server never loaded the champion")


async def batch_totals(url: str) -> tuple[float, float, float]:
    """(batches, requests batched, seconds in predict) so far, from the server's /metrics."""
    import httpx

    totals = {"flywheel_student_batch_size_count": 0.0, "flywheel_student_batch_size_sum": 0.0}
    totals["flywheel_student_batch_seconds_sum"] = 0.0
    async with httpx.AsyncClient() as http:
        text = (await http.get(url.removesuffix("/v1") + "/metrics")).text
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in totals:
            totals[name] = float(value)
    return tuple(totals.values())  # type: ignore[return-value]


def request_sender(url: str, client_kind: str) -> Any:
    """An async function sending one example: (seconds, fallback reason). Errors raise."""
    if client_kind == "raw":
        return raw_http_sender(url)
    import httpx
    import orjson

    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    http = httpx.AsyncClient(limits=limits, timeout=300)
    if client_kind == "openai":
        from openai import AsyncOpenAI

        client = AsyncOpenAI(base_url=url, api_key="bench", max_retries=0, http_client=http)

        async def via_openai(example: Example) -> tuple[float, str | None]:
            started = time.perf_counter()
            raw = await client.chat.completions.with_raw_response.create(
                model=WORKLOAD, messages=example.messages
            )
            raw.parse()
            return time.perf_counter() - started, raw.headers.get("x-flywheel-fallback-reason")

        return via_openai

    async def via_httpx(example: Example) -> tuple[float, str | None]:
        started = time.perf_counter()
        body = orjson.dumps({"model": WORKLOAD, "messages": example.messages})
        response = await http.post(
            f"{url}/chat/completions", content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        orjson.loads(response.content)["choices"][0]["message"]
        return time.perf_counter() - started, response.headers.get("x-flywheel-fallback-reason")

    return via_httpx


def raw_http_sender(url: str) -> Any:
    """HTTP/1.1 over asyncio streams: the cheapest possible client, so the load generator does not
    steal the CPU the server is being measured on (httpx costs ~7 ms CPU per call here)."""
    import orjson

    host_port = url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    path = "/" + url.split("//", 1)[1].split("/", 1)[1] + "/chat/completions"

    async def via_socket(example: Example) -> tuple[float, str | None]:
        started = time.perf_counter()
        body = orjson.dumps({"model": WORKLOAD, "messages": example.messages})
        head = f"POST {path} HTTP/1.1\r\nHost: {host_port}\r\nContent-Type: application/json\r\n"
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        raw = await reader.read(-1)
        writer.close()
        header_block, _, payload = raw.partition(b"\r\n\r\n")
        lines = header_block.decode().split("\r\n")
        if " 200 " not in lines[0] + " ":
            raise RuntimeError(f"{lines[0]}: {payload[:200]!r}")
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
        orjson.loads(payload)["choices"][0]["message"]
        return time.perf_counter() - started, headers.get("x-flywheel-fallback-reason")

    return via_socket


async def load_test(url: str, examples: list[Example], client_kind: str) -> dict[str, Any]:
    one = request_sender(url, client_kind)
    before = await batch_totals(url)
    cpu_started = time.process_time()
    started = time.perf_counter()
    results = await asyncio.gather(*(one(e) for e in examples), return_exceptions=True)
    wall = time.perf_counter() - started
    client_cpu_s = time.process_time() - cpu_started
    batches, batched, predict_s = (b - a for a, b in zip(before, await batch_totals(url), strict=True))
    errors = [r for r in results if isinstance(r, BaseException)]
    ok = sorted(r[0] for r in results if not isinstance(r, BaseException))
    fallbacks: dict[str, int] = {}
    for result in results:
        if not isinstance(result, BaseException) and result[1]:
            fallbacks[result[1]] = fallbacks.get(result[1], 0) + 1
    return {
        "requests": len(examples),
        "errors": len(errors),
        "first_error": repr(errors[0]) if errors else None,
        "wall_s": round(wall, 3),
        "served_rps": len(examples) / wall,
        "p50_ms": round(ok[len(ok) // 2] * 1000, 1) if ok else None,
        "p99_ms": round(ok[min(len(ok) - 1, int(len(ok) * 0.99))] * 1000, 1) if ok else None,
        "fallbacks": fallbacks,
        "mean_batch": batched / batches if batches else None,
        "server_predict_s": predict_s,
        "client_cpu_s": client_cpu_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--warmup", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="Raw and served runs interleaved; medians")
    parser.add_argument("--model-dir", type=Path, default=None, help="A saved student (skips training)")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx", "openai"],
        default="raw",
        help="Load generator: raw HTTP/1.1 sockets (cheapest), httpx or the openai client (both pool-scan "
        "their connections: several ms of CPU per call at 200 concurrent, stolen from the server measured)",
    )
    parser.add_argument("--threads", type=int, default=1, help="Torch threads, raw and served (0 = all)")
    args = parser.parse_args()
    if args.threads:
        os.environ["FLYWHEEL_TORCH_THREADS"] = str(args.threads)  # inherited by the server process
    from flywheel.train.fixtures import demo_examples

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        generate_demo_traffic(tmp_dir / "demo", seed=0, size=int((args.requests + 700) * 1.2))
        examples = demo_examples(tmp_dir / "demo", WORKLOAD)
        requests, train, val = examples[: args.requests], examples[args.requests :][:600], examples[-100:]
        started = time.perf_counter()
        model_dir = args.model_dir or train_student(train, val, tmp_dir / "models")
        train_s = time.perf_counter() - started
        raw = RawStudent(model_dir, requests, args.max_batch)
        home = tmp_dir / "home"
        home.mkdir()
        manifest = {
            WORKLOAD: {"model_id": "bench-student", "path": str(Path(model_dir).resolve()), "kind": "scratch"}
        }
        (home / "champions.json").write_text(json.dumps(manifest))
        rounds = []
        with serve_in_thread(make_fake_openai_app(keyword_oracle)) as teacher_url:
            process, url = start_server(home, teacher_url, args)
            try:
                asyncio.run(wait_for_champion(url))
                for _ in range(args.rounds):
                    (generate_rps, generate_cpu_rps), predict_rps = raw.generate_rps(), raw.predict_rps()
                    asyncio.run(load_test(url, requests[: args.warmup], args.client))
                    cpu_before = process_cpu_s(process.pid)
                    served = asyncio.run(load_test(url, requests, args.client))
                    served["server_cpu_s"] = process_cpu_s(process.pid) - cpu_before
                    served |= {"raw_generate_rps": generate_rps, "raw_predict_rps": predict_rps}
                    served["ratio_vs_raw_generate"] = served["served_rps"] / generate_rps
                    # Per CPU second: what the server costs beyond generate, whatever else the machine runs.
                    served["served_per_cpu_s"] = len(requests) / served["server_cpu_s"]
                    served["raw_generate_per_cpu_s"] = generate_cpu_rps
                    served["cpu_ratio_vs_raw_generate"] = served["served_per_cpu_s"] / generate_cpu_rps
                    served["ratio_vs_raw_predict"] = served["served_rps"] / predict_rps
                    rounds.append(served)
                    print(json.dumps(_rounded(served)), file=sys.stderr)
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(30)
    result = summary(rounds, args, train_s)
    print(json.dumps(result, indent=2))
    what = f"serve {args.requests} concurrent requests"
    figure("serve", what, result["median_served_rps"], "req/s", baseline=result["median_raw_generate_rps"],
           ratio=result["median_ratio_vs_raw_generate"], target=">= 0.8",
           passed=result["median_ratio_vs_raw_generate"] >= 0.8)  # fmt: skip
    figure(
        "serve", "latency p50 / p99", f"{result['median_p50_ms']:.0f} / {result['median_p99_ms']:.0f}", "ms"
    )


def summary(rounds: list[dict[str, Any]], args: argparse.Namespace, train_s: float) -> dict[str, Any]:
    import statistics

    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in rounds), 3)

    keys = ("served_rps", "p50_ms", "p99_ms", "raw_generate_rps", "raw_predict_rps", "server_cpu_s")
    return {
        "student": str(args.model_dir or "trained scratch-tiny (1 epoch)"),
        "train_seconds": round(train_s, 1),
        "requests": args.requests,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "client": args.client,
        "torch_threads": os.environ.get("FLYWHEEL_TORCH_THREADS", "all cores"),
        "rounds": len(rounds),
        "errors": sum(r["errors"] for r in rounds),
        "fallbacks": [r["fallbacks"] for r in rounds],
        **{f"median_{k}": median(k) for k in keys},
        "median_ratio_vs_raw_generate": median("ratio_vs_raw_generate"),
        "median_ratio_vs_raw_predict": median("ratio_vs_raw_predict"),
        "median_cpu_ratio_vs_raw_generate": median("cpu_ratio_vs_raw_generate"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "target_ratio": 0.8,
    }


def _rounded(values: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in values.items()}


if __name__ == "__main__":
    main()
