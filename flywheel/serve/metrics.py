"""Prometheus metrics of one server, in its own registry (two apps in one process never share counts).

route: student (the champion answered), fallback (a champion exists but the teacher answered; the
reason is in flywheel_fallbacks_total), proxy (no champion: straight to the teacher), rejected (the
request was refused before routing: auth, limits, bad input).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "flywheel_requests",
            "Chat completion requests by outcome",
            ["workload", "route", "served_by", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "flywheel_request_latency_seconds",
            "End-to-end latency of answered requests",
            ["workload", "served_by"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.fallbacks = Counter(
            "flywheel_fallbacks",
            "Requests a champion could not answer, by reason",
            ["workload", "reason"],
            registry=r,
        )
        self.tokens = Counter(
            "flywheel_tokens", "Tokens processed", ["workload", "served_by", "kind"], registry=r
        )
        self.cost = Counter(
            "flywheel_cost_usd", "Cost of answering, USD", ["workload", "served_by"], registry=r
        )
        self.shadows = Counter(
            "flywheel_shadow", "Shadow comparisons with the teacher", ["workload", "outcome"], registry=r
        )
        self.batch_size = Histogram(
            "flywheel_student_batch_size", "Requests per student batch", buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "flywheel_student_batch_seconds",
            "Student predict time per batch",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.spool_errors = Counter(
            "flywheel_spool_errors", "Capture records that failed to write", registry=r
        )
        self.champion = Gauge(
            "flywheel_champion_info",
            "The champion serving each workload (value 1)",
            ["workload", "model_id"],
            registry=r,
        )

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.batch_seconds.observe(seconds)

    def set_champions(self, serving: dict[str, str]) -> None:
        self.champion.clear()
        for workload_id, model_id in serving.items():
            self.champion.labels(workload_id, model_id).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
