"""gunicorn settings for the registry (``registry serve`` and the container use this file).

Worker model: gevent by default (``registry/workers.py`` says why and where patching happens): each connection
is a greenlet, so one worker holds REGISTRY_WORKER_CONNECTIONS (10,000) connections at once, idle, waiting or
busy, and a waiting long-poll (``?wait=``) costs a greenlet and a socket, no thread and no database
connection. Long-polls may take all but a reserve of those connections (``registry/cache/waiters.py``); beyond
that a long-poll answers at once (``X-Registry-Waited: busy``). A request's line and headers must arrive within
``keepalive`` seconds (the gevent worker reads them under that timeout), so slow or half-open clients cannot
hold the server. The soft open-files limit is raised here (in the master, inherited by the workers) to fit the
connections; if the hard limit is lower, the workers take fewer connections.

REGISTRY_WORKER_CLASS=gthread selects the previous model (REGISTRY_THREADS threads per worker, a thread per
request and per waiting long-poll) for comparison. Everything can be overridden with GUNICORN_CMD_ARGS or
command-line flags.
"""
from registry.cache.waiters import fd_reserve
from registry.config import Settings
from registry.workers import raise_open_files_limit

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
logger_class = "registry.workers.Logger"
errorlog = "-"
loglevel = settings.log_level.lower()
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
