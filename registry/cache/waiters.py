"""How many long-polls one worker lets wait at once: a socket budget, with a clear answer beyond it.

A waiting long-poll holds no database connection. What it does hold depends on the worker class
(``REGISTRY_WORKER_CLASS``, see ``registry/workers.py``):

* **gevent** (the default): one greenlet (its saved stack and its request's objects) and one socket, about
  20-30 KiB of the worker's memory (measured by ``tests/perf/run_watchers.py``: 10,000 waiters took a
  2-worker service from ~260 to 410-550 MiB RSS). The limit is the worker's socket budget: ``REGISTRY_WORKER_CONNECTIONS``,
  or the file descriptors the process may open if that is fewer, less a reserve (a tenth, at least 64) that
  waiters may never take, so ordinary requests always find a connection slot.
* **gthread**: one OS thread each; ``REGISTRY_THREADS`` − 8, so eight threads always remain for other requests.

``REGISTRY_MAX_WAITERS`` overrides either (``0`` turns long-polling off). Beyond the limit a long-poll does not
wait: it answers at once with the current answer and ``X-Registry-Waited: busy``, and the client polls again.
"""
from __future__ import annotations

import resource
import threading

# File descriptors a worker needs besides its clients' sockets: its database pool (at most the pool size),
# the change listener, log files, gevent's own pipes and some slack.
FD_RESERVE_BASE = 128


def fd_reserve(pool_size: int) -> int:
    return FD_RESERVE_BASE + pool_size


def open_files_limit() -> int | None:
    """The process's soft RLIMIT_NOFILE (None: unlimited)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def socket_budget(worker_connections: int, pool_size: int) -> int:
    """Client connections one worker can really hold: its configured connections, capped by the descriptors."""
    limit = open_files_limit()
    if limit is None:
        return worker_connections
    return max(1, min(worker_connections, limit - fd_reserve(pool_size)))


def waiter_limit(settings) -> int:
    """The default limit described above, from ``config.Settings``."""
    if settings.max_waiters is not None:
        return settings.max_waiters
    if settings.worker_class == "gthread":
        return max(1, settings.threads - 8)
    sockets = socket_budget(settings.worker_connections, settings.pool_size)
    return max(1, sockets - max(64, sockets // 10))


class WaiterBudget:
    """A count of the long-polls waiting now, never above ``limit``; entering never blocks."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.waiting = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.waiting >= self.limit:
                return False
            self.waiting += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.waiting -= 1
