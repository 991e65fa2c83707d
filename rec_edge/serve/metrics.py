"""TORCH-FREE Prometheus metrics of `rec-edge serve` (prometheus-client, one registry per app):
requests by status, latency, batch sizes, queue depth, items answered and their rate, and a
decoder's batched decode steps."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "rec_edge_requests",
            "HTTP requests by model, endpoint and status",
            ["model", "endpoint", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "rec_edge_request_seconds",
            "Request latency, first byte in to last byte out",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "rec_edge_batch_items",
            "Items (texts, or rank requests) per session run",
            ["model"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.items = Counter("rec_edge_items", "Items answered", ["model"], registry=r)
        self.queue = Gauge("rec_edge_queue_items", "Items waiting for a run", ["model"], registry=r)
        self.rate = Gauge(
            "rec_edge_items_per_second",
            "Items answered per second over the last 10 s",
            ["model"],
            registry=r,
        )

        self.decode_steps = Gauge(
            "rec_edge_decode_steps",
            "Batched decode steps a decoder bundle's Generator ran since it was loaded",
            ["model"],
            registry=r,
        )
        self.decode_answers = Gauge(
            "rec_edge_decode_step_answers",
            "Answers those steps carried (over the steps: how many were decoded together)",
            ["model"],
            registry=r,
        )

    def observe_decoders(self, predictors: dict[str, Any]) -> None:
        """The decode steps of each served decoder bundle (``Generator.decode_stats``)."""
        for name, predictor in predictors.items():
            stats = getattr(predictor, "decode_stats", None)
            if stats is not None:
                self.decode_steps.labels(name).set(stats["steps"])
                self.decode_answers.labels(name).set(stats["rows"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
