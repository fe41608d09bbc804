"""gunicorn settings for the registry (``registry serve`` and the container use this file).

Worker model: gevent by default, for fleets of watchers (``registry/workers.py`` says why and where patching
happens; REGISTRY_WORKER_CLASS=gthread selects the old thread-per-request model): each connection
is a greenlet, so one worker holds REGISTRY_WORKER_CONNECTIONS (10,000) connections at once, idle, waiting or
busy, and a waiting long-poll (``?wait=``) costs a greenlet and a socket, no thread and no database
connection. Long-polls may take all but a reserve of those connections (``registry/cache/waiters.py``); beyond
that a long-poll answers at once (``X-Registry-Waited: busy``). A request's line and headers must arrive within
``keepalive`` seconds (the gevent worker reads them under that timeout), so slow or half-open clients cannot
hold the server. The soft open-files limit is raised here (in the master, inherited by the workers) to fit the
connections; if the hard limit is lower, the workers take fewer connections.

gthread: REGISTRY_THREADS threads per worker, a thread per request and per waiting long-poll (at most threads
- 8 long-polls wait per worker). Everything can be overridden with GUNICORN_CMD_ARGS or command-line flags.

Metrics: every worker writes its metrics to files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess
mode), and whichever worker answers GET /metrics adds them all up. This file sets that directory up before any
worker starts: the operator's (emptied at start, as prometheus-client requires) or a fresh private one, removed
on exit. A worker that exits has its live gauges dropped (``child_exit``).

Logs: every logger, gunicorn's included, writes one JSON object per line to stderr (registry/telemetry/logs.py).
"""
import os
import shutil
import tempfile
from pathlib import Path

from gunicorn.glogging import Logger

_METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"  # read by prometheus-client when the first metric is made
_PRIVATE_METRICS_DIR = "REGISTRY_PRIVATE_METRICS_DIR"  # the directory this master made (kept across a HUP reload)
_OWN_METRICS_DIR = os.environ.get(_PRIVATE_METRICS_DIR) or None
if _OWN_METRICS_DIR is not None:
    pass  # gunicorn re-reads this file on HUP: the running workers' values stay
elif os.environ.get(_METRICS_DIR_VARIABLE):
    # Values left by an earlier run would be added to this one's: start empty.
    _metrics_dir = Path(os.environ[_METRICS_DIR_VARIABLE])
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for _stale in _metrics_dir.glob("*.db"):
        _stale.unlink()
else:
    _OWN_METRICS_DIR = tempfile.mkdtemp(prefix="registry-metrics-")
    os.environ[_METRICS_DIR_VARIABLE] = os.environ[_PRIVATE_METRICS_DIR] = _OWN_METRICS_DIR

# Only now the registry's modules: any of them may create a metric, and prometheus-client decides at the first
# one whether metrics are per process or shared through the directory set above (the workers inherit it).
from registry.cache.waiters import fd_reserve  # noqa: E402
from registry.config import Settings  # noqa: E402
from registry.telemetry.logs import logging_config, skip_unused_record_fields  # noqa: E402
from registry.workers import raise_open_files_limit  # noqa: E402

# Every setting is read in one place (registry/config.py), where nonsense fails fast naming the variable.
settings = Settings.from_env()
bind = settings.bind
workers = settings.workers
if settings.worker_class == "gevent":
    worker_class = "registry.workers.GeventWorker"
    open_files = raise_open_files_limit(settings.worker_connections + fd_reserve(settings.pool_size))
    worker_connections = max(16, min(settings.worker_connections, open_files - fd_reserve(settings.pool_size)))
else:
    worker_class = "gthread"
    threads = settings.threads
# Connections waiting to be accepted: many replicas reconnect at once after a restart (capped by the kernel's
# net.core.somaxconn).
backlog = 4096
# Each worker imports the app itself (REGISTRY_PRELOAD=1, gthread only, imports it in the master first).
# Preloading would share the imported code between master and workers, but CPython's reference counting writes
# to those pages and un-shares them, so it saved no real memory here (PSS 215 vs 219 MiB for master + 2
# workers with warm caches) while the master kept a full copy (RSS 299 vs 252 MiB). A worker that cannot start
# still stops the server: gunicorn exits when workers fail to boot.
preload_app = settings.preload
timeout = 60
graceful_timeout = 20
# How long an idle keep-alive connection stays open, and (gevent) how long a client may take to send a
# request's line and headers.
keepalive = 5
# No periodic worker recycling by default: a recycle drops keep-alive connections with a request in flight
# (client-visible errors under load) and empties the worker's serving caches. Set REGISTRY_MAX_REQUESTS to
# recycle after that many requests (with 10% jitter) if a leak ever needs containing.
max_requests = settings.max_requests
max_requests_jitter = max_requests // 10
accesslog = settings.access_log
errorlog = "-"
loglevel = settings.log_level.lower()
logconfig_dict = logging_config(settings.log_level, settings.access_log)
skip_unused_record_fields()


class RegistryLogger(Logger):
    """gunicorn writes an access line for every request whenever a logging configuration is given; here only
    when REGISTRY_ACCESS_LOG asks (the registry's own request line, logger ``registry.request``, has the route,
    actor and request id that gunicorn's does not). One attribute read: gunicorn 26 works the answer out from
    five settings after every request (8% of a woken long-poll's cost with no access log at all)."""

    @property
    def access_log_enabled(self):
        return bool(self.cfg.accesslog)


logger_class = RegistryLogger
proc_name = "registry"
# gunicorn >= 24 opens a runtime control socket at one fixed per-user path; several registry servers on one
# host (tests, blue/green) would fight over it, and we do not use it.
control_socket_disable = True


def post_fork(server, worker):
    # Never share a pooled connection across a fork: drop whatever a preloading master may have opened.
    if not server.cfg.preload_app:
        return
    from registry.extensions import db
    from registry.wsgi import app

    with app.app_context():
        db.engine.dispose(close=False)


def worker_exit(server, worker):
    dispatcher = getattr(worker, "registry_dispatcher", None)
    if dispatcher is not None:
        dispatcher.stop(timeout=5)
    # The last second of this worker's request and cache counts (metrics add them up once a second).
    from registry.telemetry import metrics

    metrics.flush()


def child_exit(server, worker):
    # The worker's live gauges (cache bytes, waiters, pool, listener) leave the sums with it.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _OWN_METRICS_DIR is not None:
        shutil.rmtree(_OWN_METRICS_DIR, ignore_errors=True)


def post_worker_init(worker):
    from registry import shutdown
    from registry.extensions import CACHES_KEY

    # Listen for changes from the start (not at the first cached read): a worker that replaces a dead one is
    # ready to cache at once, and an operator sees one listener per worker in pg_stat_activity.
    worker.wsgi.extensions[CACHES_KEY].hub.ensure_listening()
    # Every model's current Production (REGISTRY_WARM_STAGES) into this worker's cache, in the background, so the
    # first read of each after a deploy or a database restart is not a database read (registry/warming.py).
    from registry import warming

    worker.registry_warmer = warming.start(worker.wsgi)
    # On SIGTERM, refuse new connections at once and answer long-polls now (registry/shutdown.py says why).
    shutdown.install(worker, worker.wsgi)
    # The embedded event dispatcher (REGISTRY_EVENTS_DISPATCHER=embedded): one per worker; they share the work
    # through the database (registry/events/deliveries.py), so no extra process is needed on a single host.
    if settings.events_dispatcher == "embedded":
        from registry.events.dispatcher import for_app

        worker.registry_dispatcher = for_app(worker.wsgi).start()
