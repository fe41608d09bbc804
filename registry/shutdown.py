"""What a gunicorn worker does when it is told to stop (SIGTERM: a rolling update, a scale-down).

gunicorn's master closes its copy of the listening socket and passes SIGTERM on to the workers; a worker then
stops taking connections but keeps its own copy of the socket open until its drain ends (gthread in
gunicorn 26: up to ``graceful_timeout``). The kernel goes on completing handshakes into that socket's
backlog, so for the whole drain new clients hang, then are reset: a load balancer sees a slow host, not a
gone one. And long-polls (``?wait=``) sleep through the drain until it is cut, with no answer.

``install(worker, app)`` (called from ``post_worker_init`` in ``deploy/gunicorn.conf.py``) adds to the
worker's own SIGTERM handling, which it keeps:

* close the worker's listening sockets at once, after taking in the connections already in their backlog:
  with the master's copy gone, the port refuses new connections immediately, so clients and load balancers
  move to another replica;
* close the change hub (``cache/hub.py``): every long-poll answers now with its current answer (304 when
  nothing changed) and no new one waits;
* in-flight requests are untouched and finish within ``graceful_timeout`` as before.

It works for gthread and gevent workers alike. Under gevent the signal handler runs as a callback of its loop,
where nothing may block: the listeners are closed by the worker's own accept loops
(``GeventWorker.close_listeners``: closing a descriptor under one of gevent's watchers is not safe) and the hub
from a spawned greenlet. Under gthread the hub is closed from a new thread, never inside the signal handler
itself, where taking the hub's lock could deadlock with the code the signal interrupted.
"""
from __future__ import annotations

import select
import signal
import threading

from .extensions import CACHES_KEY


def _uses_gevent(worker) -> bool:
    # By class, not by module: the registry's own worker (registry/workers.py) is a subclass of gunicorn's.
    return any(cls.__module__.startswith("gunicorn.workers.ggevent") for cls in type(worker).__mro__)


def _close_listeners(worker) -> None:
    """Take in the connections already waiting in the backlog (closing the socket would reset them: those
    clients were accepted by the kernel, and are served like requests in flight), then close."""
    accept = getattr(worker, "accept", None)  # gthread's: accepts one connection and queues it for a thread
    for listener in worker.sockets:
        try:
            while accept is not None and select.select([listener], [], [], 0)[0]:
                accept(listener)
        except (OSError, ValueError):
            pass
        try:
            listener.close()
        except OSError:
            pass


def install(worker, app) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    hub = app.extensions[CACHES_KEY].hub
    gevent = _uses_gevent(worker)

    def stop(signum, frame):
        if not gevent:
            _close_listeners(worker)
        if callable(previous):
            previous(signum, frame)
        if gevent:
            # Not even Thread.start() (it waits for the green thread to begin) may run here: spawn greenlets.
            from gevent import spawn

            close_listeners = getattr(worker, "close_listeners", None)  # the registry's worker (registry/workers.py)
            if close_listeners is not None:
                spawn(close_listeners)
            spawn(hub.close)
        else:
            threading.Thread(target=hub.close, name="registry-shutdown", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
