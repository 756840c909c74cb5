"""Prometheus metrics, each named and documented once (the README's metrics table lists them).

Gateway metrics live in this process. Fleet metrics (``rljudge_judged_items_total``, the queue-wait
and judge-time histograms, cache hits) are added to a Redis hash by workers on every host (and by
gateways, for the verdict-cache hits they answer themselves) and rendered here at scrape time
together with the queue depth and worker counts, so one scrape of any gateway shows the whole
fleet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import keys

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "rljudge_http_requests_total",
    "HTTP requests by route template, method and status.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "rljudge_http_request_duration_seconds",
    "HTTP request latency by route template and method.",
    ["route", "method"],
    registry=REGISTRY,
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
ITEMS_SUBMITTED = Counter(
    "rljudge_items_submitted_total",
    "Valid items accepted (queued, or answered from the verdict cache), by kind.",
    ["kind"],
    registry=REGISTRY,
)
ITEMS_REJECTED = Counter(
    "rljudge_items_rejected_total", "Items refused by the gateway's validation.", registry=REGISTRY
)
ITEMS_UNSCORED = Counter(
    "rljudge_items_unscored_total",
    "Items finalised as unscored because their batch deadline passed.",
    registry=REGISTRY,
)
BACKPRESSURE = Counter(
    "rljudge_backpressure_total", "Submissions refused with 429 because the queue was full.", registry=REGISTRY
)


class FleetSnapshot:
    """Fleet-wide numbers read from Redis for one scrape."""

    def __init__(self, queue_depth: dict[str, int], workers: dict[str, int], stats: dict[bytes, bytes]) -> None:
        self.queue_depth = queue_depth
        self.workers = workers
        self.stats = {k.decode(): float(v) for k, v in stats.items()}


class FleetCollector(Collector):
    def __init__(self, snapshot: FleetSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        depth = GaugeMetricFamily("rljudge_queue_depth", "Jobs (chunks) waiting in each queue.", labels=["queue"])
        for queue, value in snap.queue_depth.items():
            depth.add_metric([queue], value)
        yield depth
        workers = GaugeMetricFamily("rljudge_workers", "Registered RQ workers by state.", labels=["state"])
        for state, value in snap.workers.items():
            workers.add_metric([state], value)
        yield workers

        items = CounterMetricFamily(
            "rljudge_judged_items",
            "Final item results written by workers (and verdict-cache hits answered by a gateway), by kind, status"
            " and verdict.",
            labels=["kind", "status", "verdict"],
        )
        hits = CounterMetricFamily("rljudge_cache_hits", "Verdict cache hits by kind.", labels=["kind"])
        hist: dict[str, dict[str, dict[str, Any]]] = defaultdict(lambda: defaultdict(dict))
        for field, value in snap.stats.items():
            name, _, rest = field.partition("|")
            if name == "items":
                kind, status, verdict = rest.split("|")
                items.add_metric([kind, status, verdict], value)
            elif name == "cache_hits":
                hits.add_metric([rest], value)
            elif name.endswith(("_bucket", "_sum", "_count")):
                histogram, _, part = name.rpartition("_")
                kind, _, bound = rest.partition("|")
                hist[histogram][kind][part if part != "bucket" else float(bound)] = value
        yield items
        yield hits
        docs = {
            "judge": ("rljudge_judge_seconds", "Time to judge one item (cache misses), by kind."),
            "wait": ("rljudge_queue_wait_seconds", "Time a chunk waited in the queue, by kind."),
        }
        for histogram, (metric_name, doc) in docs.items():
            family = HistogramMetricFamily(metric_name, doc, labels=["kind"])
            for kind, parts in hist.get(histogram, {}).items():
                running = 0.0
                buckets = []
                for bound in keys.TIME_BUCKETS:
                    running += parts.get(bound, 0.0)
                    buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
                family.add_metric([kind], buckets, parts.get("sum", 0.0))
            yield family


def render(snapshot: FleetSnapshot) -> bytes:
    fleet = CollectorRegistry(auto_describe=False)
    fleet.register(FleetCollector(snapshot))
    return generate_latest(REGISTRY) + generate_latest(fleet)
