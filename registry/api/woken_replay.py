"""Woken long-polls answered from one rendering, all of them before any finishes (gevent worker).

When a change wakes the long-polls (``?wait=``) of a model, each woken request used to go its whole way back
through Flask, the middleware and gunicorn before the next one got its answer: 300-500 µs each, so with 5,000
waiters in a worker the last answer left seconds after the first. Yet their answers are the same bytes but for
the request id. So, for woken requests whose answer no longer matches their ETag:

1. the first of them for an answer goes the whole normal way, and the worker hands its exact response bytes
   back (``ResponseSocket.when_finished``, ``registry/workers.py``). They are kept as an entry of the one cache
   (``cache/store.py``) under the answer's **replay key**: the serving question, the answer's ETag, and what
   of the request shapes the bytes (its method, HTTP version and ``Connection`` header). Scope: the model; label: taken
   before the answer was read. So the freshness rule holds as for any entry: a later change drops it.
2. Every other woken request with that key (each has made its own read of the answer, permission checked,
   shared with the others by ``cache/flights.py``) sends those bytes at once with its own ``X-Request-Id``
   (``ResponseSocket.answer_now``), then yields, so that every woken request has answered before any of them
   finishes.
3. Then each finishes the normal way (its metrics, its log line); gunicorn's writes for it are dropped.

While the first one's bytes are on their way, the others wait for them (at most ``LEADER_WAIT_SECONDS``)
rather than render their own; if they never come (the first request failed), each answers the normal way.
Without the gevent worker's ``ResponseSocket`` (gthread) nothing changes: every request answers normally.
"""
from __future__ import annotations

import threading
import time
from typing import Hashable

from ..cache.hub import Label, Scope
from ..cache.store import Store
from ..telemetry import metrics
from ..telemetry.requests import HEADER as REQUEST_ID_HEADER

WOKEN_REPLAY_KEY = "registry_woken_replay"
LEADER_WAIT_SECONDS = 1.0
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # set to the request's id by telemetry/requests.py


def _request_id_line(request_id: str) -> bytes:
    return f"\r\n{REQUEST_ID_HEADER}: {request_id}\r\n".encode("latin-1")


class WokenReplay:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Event] = {}  # replay keys whose first response is on its way
        self.answered = 0  # woken requests answered from another's bytes (tests; metrics count them too)

    def answer(self, environ: dict, question: Hashable, etag: str, scope: Scope, label: Label) -> bool:
        """Answer this woken request now from the bytes of the first one with the same replay key; True if it
        was (the caller then finishes normally: what gunicorn writes is dropped). False: answer normally
        (this request's bytes may become the ones the others send)."""
        response_socket = environ.get("gunicorn.socket")
        if not hasattr(response_socket, "answer_now"):
            return False  # not the gevent worker's ResponseSocket
        request_id = environ.get(_REQUEST_ID_ENVIRON)
        if not request_id:
            return False
        key = ("woken", question, etag, environ.get("REQUEST_METHOD"), environ.get("SERVER_PROTOCOL"),
               environ.get("HTTP_CONNECTION", "").lower())
        entry = self.store.get(key)
        if entry is None:
            with self._lock:
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    response_socket.when_finished(
                        lambda sent: self._first_sent(key, scope, label, request_id, sent))
                    return False
            pending.wait(LEADER_WAIT_SECONDS)
            entry = self.store.get(key)
            if entry is None:
                return False
        sent, first_request_id = entry.payload
        # The first request's id line is in the bytes (``_first_sent`` kept them only then): never send it on.
        response_socket.answer_now(sent.replace(_request_id_line(first_request_id), _request_id_line(request_id), 1))
        self.answered += 1
        metrics.LONGPOLL_REPLAYED.inc()
        time.sleep(0)  # under gevent: let every other woken request answer before this one finishes
        return True

    def _first_sent(self, key: Hashable, scope: Scope, label: Label, request_id: str, sent: bytes | None) -> None:
        try:
            if sent and _request_id_line(request_id) in sent:
                self.store.put(key, scope, label, (sent, request_id), len(sent))
        finally:
            with self._lock:
                pending = self._pending.pop(key, None)
            if pending is not None:
                pending.set()
