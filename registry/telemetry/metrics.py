"""Every metric the registry exports, in one module: import the object you need and update it.

Names start with ``registry_``; labels take values from a small, fixed set only (route *templates*, endpoint
names, status codes, model names bounded by the collector that reports them), never raw paths or user input.
Adding a metric (the events outbox, a stream): define it here, with its help text, and document it in the
README's "Operating" section; values known only by querying the database belong in a scrape-time collector
(``telemetry/collectors.py``) instead.

**Several processes.** gunicorn runs several workers and a scrape reaches one of them, so each metric's values
live in files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode), which the answering
worker sums at scrape time (``exposition``). ``deploy/gunicorn.conf.py`` creates and empties that directory at
start and drops a dead worker's live gauges in ``child_exit``. Without the variable (tests, ``flask run``),
values live in this process only. The variable must be set before this module is imported: prometheus-client
picks its storage when the first metric is made.

**Gauges across workers** say how they combine: ``livesum`` (a total, e.g. cache bytes), ``livemin`` (health:
one worker down shows as down). A gauge written by a dead worker disappears with it.

Updating a metric costs a lock and a write to a memory-mapped file (about a microsecond); the per-request path
(``telemetry/requests.py``) does one histogram observation and nothing else.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import REGISTRY as PROCESS_REGISTRY

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# --- HTTP ------------------------------------------------------------------------------------------------
# Latency buckets from a replayed cached read (~0.2 ms) to a statement timeout (30 s); long-polls
# (``?wait=``) are counted with the time they waited, on their own route's series.
_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
HTTP_REQUESTS = Histogram(
    "registry_http_request_duration_seconds",
    "Requests answered, by dialect (native, mlflow, databricks, console, health, metrics, none), route template, "
    "method and status, with the time until the response started (its _count is the request count).",
    ["dialect", "route", "method", "status"], buckets=_LATENCY_BUCKETS,
)

# --- Serving caches (cache/store.py, cache/hub.py) ----------------------------------------------------------
CACHE_LOOKUPS = Counter(
    "registry_cache_lookups_total",
    "Cache lookups by kind of entry (a replayable endpoint, token, level, serving answer) and result (hit/miss).",
    ["kind", "result"],
)
CACHE_EVICTIONS = Counter("registry_cache_evictions_total", "Entries evicted to stay within REGISTRY_CACHE_MB.")
CACHE_BYTES = Gauge("registry_cache_bytes", "Bytes held by the caches, all workers.", multiprocess_mode="livesum")
CACHE_ENTRIES = Gauge("registry_cache_entries", "Entries held by the caches, all workers.", multiprocess_mode="livesum")
LONGPOLL_WAITERS = Gauge("registry_longpoll_waiters", "Long-polls (?wait=) waiting now, all workers.",
                         multiprocess_mode="livesum")
LONGPOLL_BUSY = Counter("registry_longpoll_busy_total",
                        "Long-polls answered at once because every waiting slot (REGISTRY_MAX_WAITERS) was taken.")
LISTENER_UP = Gauge(
    "registry_listener_up",
    "1 when every worker's change listener (LISTEN registry_changes) is connected; 0 when any is not (caches "
    "are bypassed meanwhile).", multiprocess_mode="livemin",
)
LISTENER_DISCONNECTS = Counter("registry_listener_disconnects_total",
                               "Times a change listener lost its connection (or failed to connect).")
LISTENER_CONNECTS = Counter("registry_listener_connects_total",
                            "Times a change listener connected (the first time, and every reconnect).")

# --- Database pool (pooling.py) -----------------------------------------------------------------------------
DB_POOL_CHECKED_OUT = Gauge("registry_db_pool_checked_out", "Pooled connections in use, all workers.",
                            multiprocess_mode="livesum")
DB_POOL_OVERFLOW = Gauge("registry_db_pool_overflow", "Connections open beyond the pool size, all workers.",
                         multiprocess_mode="livesum")
DB_POOL_CAPACITY = Gauge("registry_db_pool_capacity",
                         "Connections the pools may open (pool size + overflow), all workers.",
                         multiprocess_mode="livesum")
DB_POOL_EXHAUSTED = Counter(
    "registry_db_pool_exhausted_total",
    "Checkouts that took a worker's last connection: until one is returned, the next request waits.",
)


def _children(metric, size: int = 4096):
    """``labels(...)`` with its answer remembered: the hot path pays a dict lookup, not a lock and a tuple
    build. Bounded, since label values come from a fixed set (if that ever breaks, it stops remembering)."""
    known: dict = {}

    def child(*values):
        found = known.get(values)
        if found is None:
            found = metric.labels(*values)
            if len(known) < size:
                known[values] = found
        return found

    return child


http_requests = _children(HTTP_REQUESTS)
cache_lookups = _children(CACHE_LOOKUPS)


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE) or None


def scrape_registry(collectors=()) -> CollectorRegistry:
    """The registry one scrape reads: every worker's files (multiprocess) or this process's metrics, plus the
    scrape-time collectors given."""
    directory = multiprocess_dir()
    if directory is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Forward(PROCESS_REGISTRY))
    else:
        from prometheus_client import multiprocess

        registry = CollectorRegistry(auto_describe=False)
        multiprocess.MultiProcessCollector(registry, path=directory)
    for collector in collectors:
        registry.register(collector)
    return registry


class _Forward:
    """Adds the process-wide registry's metrics to a per-scrape registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self):
        return self.source.collect()
