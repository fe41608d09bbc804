"""The gevent worker (``REGISTRY_WORKER_CLASS=gevent``; not yet the default, README "Serving at scale"), and the
file-descriptor limit it needs.

**Why gevent.** Serving replicas long-poll (``?wait=30``) and keep connections open; under gunicorn's gthread
worker each of those held an OS thread, so a worker let 24 wait and 200 slow clients stopped the server.
gunicorn's gevent worker gives each connection a greenlet instead (a few KiB), so one worker holds thousands of
waiting and idle connections, and a client that sends its request slowly only costs its greenlet: the request
line and headers must arrive within ``keepalive`` seconds (gunicorn's gevent worker reads them under that
timeout) and the connection is closed otherwise. The app stays a plain Flask app; the old worker stays
selectable (``REGISTRY_WORKER_CLASS=gthread``) for comparison (``tests/perf/run_watchers.py``).

**Where patching happens.** gunicorn's gevent worker monkey-patches the standard library (threads, locks,
sockets, ``select``, ``time.sleep``) in each worker right after the fork, before the app is imported (hence no
preloading with it: ``config.py`` refuses the combination). That makes the change listener
(``cache/hub.py``), its conditions, the caches' locks, SQLAlchemy's pool and the write queues
(``db/queueing.py``) cooperative without a change to them. psycopg2 is a C extension that the patching cannot
reach; ``psycogreen`` installs psycopg2's documented wait callback so that its socket waits yield to other
greenlets. Both happen in ``GeventWorker.patch`` below: the one place.
"""
from __future__ import annotations

import logging
import resource

from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker

log = logging.getLogger("registry")


class GeventWorker(_GunicornGeventWorker):
    """gunicorn's gevent worker, with psycopg2 made cooperative too, and one send per small response."""

    def patch(self) -> None:
        super().patch()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()

    def init_process(self) -> None:
        if self.cfg.workers > 1:
            # gunicorn's run() builds its accept loop from this module-level name; we are in this worker's own
            # process, so replacing it here changes nothing elsewhere.
            ggevent.StreamServer = _TakingTurnsServer
        super().init_process()

    def handle_request(self, listener_name, req, sock, addr):
        # When a promotion wakes thousands of long-polls, each answer's send system calls are a quarter of the
        # worker's time (measured with py-spy): sending the header block with the body halves them.
        held = _HeadersWithBody(sock)
        try:
            return super().handle_request(listener_name, req, held, addr)
        finally:
            held.flush()


class _TakingTurnsServer(ggevent.StreamServer):
    """gevent's accept loop, pausing briefly after each connection it accepts while it holds few, so that
    sibling workers (all waiting on the one listening socket) take the next ones. Without it the worker that
    wakes first accepts a whole burst: wrk's 32 keep-alive connections all went to one of two workers, which
    halved throughput. Past ``BALANCED_FROM`` connections a worker accepts at full speed (the loop's timers
    are millisecond-grained, so pausing always would make 10,000 reconnecting clients wait seconds); by then
    each worker is busy serving its own and the others get their share."""

    PAUSE_SECONDS = 0.0005
    BALANCED_FROM = 500

    def do_handle(self, *args) -> None:
        super().do_handle(*args)
        if self._watcher is not None and self.pool is not None and len(self.pool) < self.BALANCED_FROM:
            self.stop_accepting()
            self._timer = self.loop.timer(self.PAUSE_SECONDS)
            self._timer.start(self._start_accepting_if_started)


class _HeadersWithBody:
    """The client socket as gunicorn's response writer sees it: its first write (the header block, which
    gunicorn sends right before the first body bytes) is held and sent together with the next write; whatever
    is still held when the request ends is sent then. Everything else goes straight to the socket."""

    __slots__ = ("_sock", "_held", "_first")

    def __init__(self, sock) -> None:
        self._sock = sock
        self._held = b""
        self._first = True

    def sendall(self, data) -> None:
        if self._first:
            self._first = False
            self._held = bytes(data)
            return
        if self._held:
            data, self._held = self._held + bytes(data), b""
        self._sock.sendall(data)

    def send(self, data) -> int:
        self.flush()
        return self._sock.send(data)

    def sendfile(self, *args, **kwargs):
        self.flush()
        return self._sock.sendfile(*args, **kwargs)

    def flush(self) -> None:
        self._first = False
        if self._held:
            held, self._held = self._held, b""
            self._sock.sendall(held)

    def __getattr__(self, name):
        return getattr(self._sock, name)


def raise_open_files_limit(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``needed`` (never above the hard limit); workers forked
    afterwards inherit it. Returns the soft limit in force (``needed`` if unlimited)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return needed if soft == resource.RLIM_INFINITY else soft
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning("open files limited to %d by the hard limit (wanted %d): fewer connections per worker", target, needed)
    return target
