"""The gunicorn worker the registry runs (gevent; ``REGISTRY_WORKER_CLASS=gthread`` selects the old one), and the
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

import gevent

from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker as _GunicornGeventWorker

log = logging.getLogger("registry")


class GeventWorker(_GunicornGeventWorker):
    """gunicorn's gevent worker, with psycopg2 made cooperative too, one send per small response, and a turn
    for the other connections after each request."""

    def patch(self) -> None:
        super().patch()
        from psycogreen.gevent import patch_psycopg

        patch_psycopg()
        # gunicorn's patch() has just made the listening sockets gevent's; remember their addresses (see handle).
        self._listener_names = {listener: _ListenerName(listener.getsockname()) for listener in self.sockets}

    def handle(self, listener, client, addr):
        # gunicorn's handler asks the listening socket for its address, but the connections close_listeners
        # takes from the backlog are served after that socket is closed, where the question raises EBADF and
        # the client is reset: answer it from what was remembered instead.
        return super().handle(self._listener_names.get(listener, listener), client, addr)

    def init_process(self) -> None:
        # gunicorn's run() builds its accept loops from this module-level name; we are in this worker's own
        # process, so replacing it here changes nothing elsewhere.
        _AcceptLoop.take_turns = self.cfg.workers > 1
        ggevent.StreamServer = _AcceptLoop
        super().init_process()

    def close_listeners(self) -> None:
        """Stop accepting now, without resetting anyone (``registry/shutdown.py`` calls this in a greenlet on
        SIGTERM). gunicorn's own loop would close the listening sockets only at its next once-a-second tick,
        and closing a socket resets every connection still in its backlog: clients the kernel already
        accepted, who did nothing wrong. So: stop the accept watchers, take in the backlog (those clients are
        served like requests in flight), then close, with no pause between the last accept and the close."""
        for loop in list(_AcceptLoop.running):
            loop.drain_and_close()

    def handle_request(self, listener_name, req, sock, addr):
        # The app sees the client socket as a ResponseSocket (environ["gunicorn.socket"]): see that class.
        response_socket = ResponseSocket(sock)
        complete = False
        try:
            keep_alive = super().handle_request(listener_name, req, response_socket, addr)
            complete = True
            # A turn for every other connection before this one's next request. gevent switches only where a
            # greenlet must wait, and a keep-alive client whose next request is already in the buffer (a
            # pipelining client, or a fast one on a busy worker) never makes this one wait: it kept the worker
            # to itself, and others waited seconds (tests/system/test_workers.py).
            gevent.sleep(0)
            return keep_alive
        except StopIteration:
            # gunicorn's way to close the connection: after a whole response (Connection: close), or after it
            # shut the socket down because the app failed once the headers were out.
            complete = not response_socket.shut_down
            raise
        finally:
            response_socket.finish(complete=complete)


class _AcceptLoop(ggevent.StreamServer):
    """gevent's accept loop (one per listening socket in this worker), with two changes.

    **Taking turns** (with more than one worker): it pauses briefly after each connection it accepts while it
    holds few, so that sibling workers (all waiting on the one listening socket) take the next ones. Without it
    the worker that wakes first accepts a whole burst: wrk's 32 keep-alive connections all went to one of two
    workers, which halved throughput. Past ``BALANCED_FROM`` connections a worker accepts at full speed (the
    loop's timers are millisecond-grained, so pausing always would make 10,000 reconnecting clients wait
    seconds); by then each worker is busy serving its own and the others get their share.

    **Closing without resets** (``drain_and_close``, see ``GeventWorker.close_listeners``)."""

    PAUSE_SECONDS = 0.0005
    BALANCED_FROM = 500
    take_turns = False
    running: list["_AcceptLoop"] = []  # this worker process's loops, for close_listeners

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _AcceptLoop.running.append(self)

    def do_handle(self, *args) -> None:
        super().do_handle(*args)
        if (self.take_turns and self._watcher is not None and self.pool is not None
                and len(self.pool) < self.BALANCED_FROM):
            self.stop_accepting()
            self._timer = self.loop.timer(self.PAUSE_SECONDS)
            self._timer.start(self._start_accepting_if_started)

    def drain_and_close(self) -> None:
        if self.closed:
            return
        self.stop_accepting()
        # do_read accepts one waiting connection, or returns None once the backlog is empty (the socket never
        # blocks); do_handle gives it a greenlet, waiting for a free place if the pool is full.
        while (accepted := self.do_read()) is not None:
            self.do_handle(*accepted)
        self.close()  # gunicorn's run() closes it again later: a no-op on a closed server


class _ListenerName:
    """A closed listening socket's address: all gunicorn's request handler asks of a listener."""

    __slots__ = ("_name",)

    def __init__(self, name) -> None:
        self._name = name

    def getsockname(self):
        return self._name


class ResponseSocket:
    """The client socket as one request's response sees it (gunicorn writes through it; the app finds it as
    ``environ["gunicorn.socket"]``). Three things beyond a socket:

    * **One send per small response.** Its first write (the header block, which gunicorn sends right before the
      first body bytes) is held and sent together with the next one; whatever is still held when the request
      ends is sent then. When a promotion wakes thousands of long-polls, each answer's send system calls were a
      quarter of the worker's time (measured with py-spy); this halves them.
    * **Answering early** (``answer_now``): the app sends this request's whole response itself, now, and
      everything gunicorn writes for the request afterwards is dropped. ``api/woken_replay.py`` uses it so that
      thousands of woken long-polls all have their answers before any of them spends time on its bookkeeping.
    * **Telling what was sent** (``when_finished``): a callback gets the exact bytes of this request's response
      once gunicorn has written all of it (None if the request failed or was answered early), so they can be
      sent again to requests that must get the same answer.
    """

    __slots__ = ("_sock", "_held", "_first", "_answered", "_sent", "_on_finished", "shut_down")

    def __init__(self, sock) -> None:
        self._sock = sock
        self._held = b""
        self._first = True
        self._answered = False
        self._sent: list[bytes] | None = None  # what this response sent, kept only when asked (when_finished)
        self._on_finished = None
        self.shut_down = False  # gunicorn shut the connection down: its response was cut

    @property
    def answered_early(self) -> bool:
        return self._answered

    def answer_now(self, response: bytes) -> None:
        """Send ``response`` (status line, headers and body) as this request's whole answer."""
        self._answered = True
        self._held = b""
        self._sock.sendall(response)

    def when_finished(self, callback) -> None:
        self._sent = []
        self._on_finished = callback

    def sendall(self, data) -> None:
        if self._answered:
            return
        if self._sent is not None:
            self._sent.append(bytes(data))
        if self._first:
            self._first = False
            self._held = bytes(data)
            return
        if self._held:
            data, self._held = self._held + bytes(data), b""
        self._sock.sendall(data)

    def send(self, data) -> int:
        if self._answered:
            return len(data)
        self._flush()
        if self._sent is not None:
            self._sent = None  # a partial send: what went out is not known exactly, so nothing is reported
        return self._sock.send(data)

    def sendfile(self, *args, **kwargs):
        self._flush()
        self._sent = None
        return self._sock.sendfile(*args, **kwargs)

    def shutdown(self, how) -> None:
        self.shut_down = True
        self._sock.shutdown(how)

    def finish(self, complete: bool) -> None:
        """The request is over (``complete``: gunicorn wrote its whole response without an error)."""
        self._flush()
        callback, self._on_finished = self._on_finished, None
        if callback is not None:
            callback(b"".join(self._sent) if complete and self._sent is not None and not self._answered else None)

    def _flush(self) -> None:
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
