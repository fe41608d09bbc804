"""gunicorn settings for the registry (``registry serve`` and the container use this file).

Worker model: gthread, 32 threads per worker by default (REGISTRY_THREADS). Requests mostly wait on
PostgreSQL, so threads keep both cores busy cheaply; and serving clients long-poll (``?wait=``), each holding a
thread while it waits. At most REGISTRY_MAX_WAITERS (default: threads - 8) long-polls wait at once per
worker; beyond that a long-poll answers at once (header ``X-Registry-Waited: busy``), so at least 8 threads
per worker always remain for ordinary requests. Waiters hold no database connection while waiting.
Everything can be overridden with GUNICORN_CMD_ARGS or command-line flags.
"""
from registry.config import Settings

# Every setting is read in one place (registry/config.py), where nonsense fails fast naming the variable.
settings = Settings.from_env()
bind = settings.bind
workers = settings.workers
worker_class = "gthread"
threads = settings.threads
# Each worker imports the app itself (REGISTRY_PRELOAD=1 imports it in the master first). Preloading would
# share the imported code between master and workers, but CPython's reference counting writes to those pages
# and un-shares them, so it saved no real memory here (PSS 215 vs 219 MiB for master + 2 workers with warm
# caches) while the master kept a full copy (RSS 299 vs 252 MiB). A worker that cannot start still stops
# the server: gunicorn exits when workers fail to boot.
preload_app = settings.preload
timeout = 60
graceful_timeout = 20
keepalive = 5
# No periodic worker recycling by default: a recycle drops keep-alive connections with a request in flight
# (client-visible errors under load) and empties the worker's serving caches. Set REGISTRY_MAX_REQUESTS to
# recycle after that many requests (with 10% jitter) if a leak ever needs containing.
max_requests = settings.max_requests
max_requests_jitter = max_requests // 10
accesslog = settings.access_log
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



def post_worker_init(worker):
    # The embedded event dispatcher (REGISTRY_EVENTS_DISPATCHER=embedded): one per worker; they share the work
    # through the database (registry/events/deliveries.py), so no extra process is needed on a single host.
    if settings.events_dispatcher != "embedded":
        return
    from registry.events.dispatcher import for_app

    from registry.wsgi import app

    worker.registry_dispatcher = for_app(app).start()


def worker_exit(server, worker):
    dispatcher = getattr(worker, "registry_dispatcher", None)
    if dispatcher is not None:
        dispatcher.stop(timeout=5)
