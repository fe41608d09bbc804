"""The hot path's metric updates are added up in the process and written in bulk (registry/telemetry/metrics.py,
``_Batch``): what a scrape then reads must equal what observing each value would have given. This also
guards the two prometheus-client internals the bulk write uses (a histogram child's ``_sum`` and ``_buckets``)."""
from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram

from registry.telemetry.metrics import _LATENCY_BUCKETS, _Batch

VALUES = [0.0001, 0.0005, 0.0005001, 0.003, 0.2, 0.25, 7.0, 59.0, 61.0, 3600.0]


def _samples(registry: CollectorRegistry, name: str) -> list[tuple]:
    return sorted((s.name.replace(name, ""), tuple(sorted(s.labels.items())), s.value)
                  for family in registry.collect() for s in family.samples if not s.name.endswith("_created"))


def test_bulk_histogram_writes_equal_one_observation_each():
    direct_registry, batched_registry = CollectorRegistry(), CollectorRegistry()
    direct = Histogram("direct", "d", ["route"], buckets=_LATENCY_BUCKETS, registry=direct_registry)
    batched = Histogram("batched", "b", ["route"], buckets=_LATENCY_BUCKETS, registry=batched_registry)
    batch = _Batch()
    for value in VALUES:
        direct.labels("/a").observe(value)
        batch.observe(batched, (*_LATENCY_BUCKETS, float("inf")), ("/a",), value)
    batch.flush()
    assert _samples(batched_registry, "batched") == _samples(direct_registry, "direct")


def test_counts_from_many_threads_add_up():
    registry = CollectorRegistry()
    counter = Counter("lookups", "l", ["kind"], registry=registry)
    batch = _Batch()

    def count():
        for _ in range(5000):
            batch.count(counter, ("hit",))

    threads = [threading.Thread(target=count) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batch.flush()
    batch.flush()  # nothing twice
    assert registry.get_sample_value("lookups_total", {"kind": "hit"}) == 40_000
