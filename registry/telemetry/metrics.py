"""Every metric the registry exports, in one module: import the object you need and update it.

Names start with ``registry_``; labels take values from a small, fixed set only (route *templates*, endpoint
names, status codes, model names bounded by the collector that reports them), never raw paths or user input.
Adding a metric (the events outbox, a stream): define it here, with its help text, and document it in the
README's "Operating" section; values known only by querying the database belong in a scrape-time collector
(``telemetry/collectors.py``) instead.

**Several processes.** gunicorn runs several workers and a scrape reaches one of them, so each metric's values
live in files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode), which the answering
worker sums at scrape time (``scrape_registry``). ``deploy/gunicorn.conf.py`` creates and empties that directory at
start and drops a dead worker's live gauges in ``child_exit``. Without the variable (tests, ``flask run``),
values live in this process only. The variable must be set before this module is imported: prometheus-client
picks its storage when the first metric is made.

**Gauges across workers** say how they combine: ``livesum`` (a total, e.g. cache bytes), ``livemin`` (health:
one worker down shows as down). A gauge written by a dead worker disappears with it.

Updating a metric costs a lock and a write to a memory-mapped file (3-9 us); the per-request updates (the
request histogram, cache lookups) are therefore added up in the process and written once a second
(``_Batch``, ``observe_request``, ``count_cache_lookup``).
"""
from __future__ import annotations

import itertools
import os
import threading
import time
from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client.metrics import MetricWrapperBase

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

# --- HTTP ------------------------------------------------------------------------------------------------
# Latency buckets from a replayed cached read (~0.2 ms) to a statement timeout (30 s); long-polls that waited
# are counted on their own series (route ``...?wait``, telemetry/requests.py).
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
CACHE_WARMINGS = Counter(
    "registry_cache_warmings_total",
    "Times a worker finished warming its cache with every model's answers in REGISTRY_WARM_STAGES and "
    "REGISTRY_WARM_ALIASES, rendered (at start and after each listener reconnect, or until half of the cache is "
    "used: registry/warming.py).")
LONGPOLL_WAITERS = Gauge("registry_longpoll_waiters", "Long-polls (?wait=) waiting now, all workers.",
                         multiprocess_mode="livesum")
LONGPOLL_BUSY = Counter("registry_longpoll_busy_total",
                        "Long-polls answered at once because every waiting slot (REGISTRY_MAX_WAITERS) was taken.")
LONGPOLL_REPLAYED = Counter(
    "registry_longpoll_replayed_total",
    "Woken long-polls answered at once with the bytes of the first woken request with the same answer "
    "(api/woken_replay.py).")
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
WEBHOOK_ATTEMPTS = Counter(
    "registry_webhook_attempts_total",
    "Webhook delivery attempts by outcome: delivered, retrying (tried again later), failed (given up on).",
    ["outcome"],
)
DB_POOL_EXHAUSTED = Counter(
    "registry_db_pool_exhausted_total",
    "Checkouts that took a worker's last connection: until one is returned, the next request waits.",
)


class _Batch:
    """The hot path's updates, added up in this process and written to the metrics once a second.

    A multiprocess metric update takes a lock and writes to a memory-mapped file: ~9 us for a histogram
    observation, ~3 us for a counter, which a cached serving read (~200 us of CPU) would feel. Here a count is
    one ``next()`` on the key's ``itertools.count`` (atomic under the GIL, so no lock: a replayed read counts
    three lookups) and an observation adds to a dict under one uncontended lock (~1 us); a background thread
    writes the sums (``flush``: also before every scrape of this process and when a gunicorn worker exits), so
    a scrape sees at most a second's delay. Histogram sums are written to the child's bucket and sum values in
    bulk: prometheus-client has no public bulk observe, and tests/unit/test_metrics_batch.py checks the result
    equals ``observe``.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # In a forked child: the parent's sums are the parent's to write.
        self._lock = threading.Lock()
        self._counters: dict[tuple, itertools.count] = {}
        self._last_read: dict[tuple, int] = {}  # what each counter's next() returned at the last flush
        self._observations: dict[tuple, list] = {}
        self._flushing = False  # a flusher thread runs in this process

    def count(self, metric, labels: tuple) -> None:
        """One more (metric, labels)."""
        key = (metric, labels)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters.setdefault(key, itertools.count())
        next(counter)
        if not self._flushing:
            self._start_flusher()

    def observe(self, metric, bounds: tuple, labels: tuple, value: float) -> None:
        key = (metric, labels)
        with self._lock:
            found = self._observations.get(key)
            if found is None:
                found = self._observations[key] = [0.0] + [0] * len(bounds)
            found[0] += value
            found[1 + bisect_left(bounds, value)] += 1
        if not self._flushing:
            self._start_flusher()

    def flush(self) -> None:
        with self._lock:
            observations, self._observations = self._observations, {}
            # A counter's next() here returns (its counts so far) + (the flushes that read it before, each of
            # which took one value too): what was counted since the last flush is the gap between the two reads.
            counts = []
            for key, counter in list(self._counters.items()):
                now = next(counter)
                counted = now - self._last_read.get(key, -1) - 1
                self._last_read[key] = now
                if counted:
                    counts.append((key, counted))
        for (metric, labels), amount in counts:
            metric.labels(*labels).inc(amount)
        for (metric, labels), (total, *buckets) in observations.items():
            child = metric.labels(*labels)
            child._sum.inc(total)
            for index, n in enumerate(buckets):
                if n:
                    child._buckets[index].inc(n)

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flushing:
                return
            self._flushing = True
        threading.Thread(target=self._flush_every_second, name="registry-metrics", daemon=True).start()

    def _flush_every_second(self) -> None:
        while True:
            time.sleep(1.0)
            try:
                self.flush()
            except Exception:  # never let a metrics problem end the thread; the next second tries again
                pass


BATCH = _Batch()
_REQUEST_BOUNDS = (*_LATENCY_BUCKETS, float("inf"))


def observe_request(dialect: str, route: str, method: str, status: str, seconds: float) -> None:
    BATCH.observe(HTTP_REQUESTS, _REQUEST_BOUNDS, (dialect, route, method, status), seconds)


def count_cache_lookup(kind: str, result: str) -> None:
    BATCH.count(CACHE_LOOKUPS, (kind, result))


def flush() -> None:
    """Write this process's pending updates now (before a scrape, at worker exit)."""
    BATCH.flush()


class _Off:
    """What every metric becomes in a process with REGISTRY_METRICS=0: updates cost a call and nothing else."""

    def labels(self, *_values, **_labels):
        return self

    def inc(self, *_args) -> None:
        pass

    dec = set = observe = inc


_OFF = _Off()


def switch_off() -> None:
    """REGISTRY_METRICS=0: this process updates no metric (GET /metrics still answers, with what others
    wrote). Callers read ``metrics.NAME`` when they update, so replacing the module's names is enough."""
    global observe_request, count_cache_lookup
    module = globals()
    for name, value in list(module.items()):
        if isinstance(value, MetricWrapperBase):
            module[name] = _OFF
    observe_request = count_cache_lookup = lambda *_args: None


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
