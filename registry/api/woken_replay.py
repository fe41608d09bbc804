"""Woken long-polls answered from one rendering, all of them before any finishes (gevent worker).

When a change wakes the long-polls (``?wait=``) of a model, each woken request used to go its whole way back
through Flask, the middleware and gunicorn before the next one got its answer: 300-500 µs each, so with 5,000
waiters in a worker the last answer left seconds after the first. Yet their answers are the same bytes but for
the request id. So:

1. A long-poll about to wait is **parked** here (``park``): its response socket, request id, caller and ETags,
   grouped by what shapes its answer's bytes: the serving question, the request's method, HTTP version and
   ``Connection`` header.
2. The first woken request of a group goes the whole normal way, and the worker hands its exact response bytes
   back (``ResponseSocket.when_finished``, ``registry/workers.py``). They are kept as an entry of the one cache
   (``cache/store.py``) under the group and the answer's ETag; scope: the model; label: taken before the
   answer was read, so the freshness rule holds as for any entry (a later change drops it).
3. Right then, in one loop, every request still parked in the group whose ETags the new answer does not match,
   and whose READ on the model the cache proves (``services.access.may_read_remembered``, the response
   replay's rule), is sent those bytes with its own ``X-Request-Id`` (``ResponseSocket.answer_now``).
4. Each woken request then finishes the normal way (its metrics, its log line); gunicorn's writes for one
   answered early are dropped. A woken request that was not answered in the loop (it woke first, or its READ
   was not remembered) sends the bytes itself if its answer matches them, or answers the normal way.

Whether a parked request is answered by the loop or by itself is decided once, under a lock (``_Parked.state``),
so no request is ever answered twice. Without the gevent worker's ``ResponseSocket`` (gthread) nothing is
parked and every request answers the normal way.
"""
from __future__ import annotations

import threading
import time
from typing import Callable, Hashable

from ..auth import Actor
from ..cache.hub import Label, Scope
from ..cache.store import Store
from ..services.access import may_read_remembered
from ..telemetry import metrics
from ..telemetry.requests import HEADER as REQUEST_ID_HEADER

WOKEN_REPLAY_KEY = "registry_woken_replay"
LEADER_WAIT_SECONDS = 1.0
_REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # set to the request's id by telemetry/requests.py

_WAITING, _ANSWERED, _OWN = 0, 1, 2


def _request_id_line(request_id: str) -> bytes:
    return f"\r\n{REQUEST_ID_HEADER}: {request_id}\r\n".encode("latin-1")


class _Parked:
    __slots__ = ("group", "socket", "request_id", "actor", "etags", "state")

    def __init__(self, group: Hashable, socket, request_id: str, actor: Actor, etags: frozenset[str]) -> None:
        self.group, self.socket, self.request_id, self.actor, self.etags = group, socket, request_id, actor, etags
        self.state = _WAITING


class WokenReplay:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._parked: dict[Hashable, dict[_Parked, None]] = {}  # group -> its parked requests (ordered set)
        self._pending: dict[Hashable, threading.Event] = {}  # cache keys whose first response is on its way
        self.answered = 0  # requests answered with another's bytes (tests; metrics count them too)

    # --- waiting -----------------------------------------------------------------------------------------

    def park(self, environ: dict, question: Hashable, actor: Actor, etags: frozenset[str]) -> _Parked | None:
        """Note a long-poll that is about to wait (None: it cannot be answered early, e.g. under gthread)."""
        response_socket = environ.get("gunicorn.socket")
        request_id = environ.get(_REQUEST_ID_ENVIRON)
        if not hasattr(response_socket, "answer_now") or not request_id:
            return None
        group = (question, environ.get("REQUEST_METHOD"), environ.get("SERVER_PROTOCOL"),
                 environ.get("HTTP_CONNECTION", "").lower())
        parked = _Parked(group, response_socket, request_id, actor, etags)
        with self._lock:
            self._parked.setdefault(group, {})[parked] = None
        return parked

    def unpark(self, parked: _Parked | None) -> None:
        """The long-poll stopped waiting (woken, timed out or failed): the loop no longer answers it."""
        if parked is None:
            return
        with self._lock:
            members = self._parked.get(parked.group)
            if members is not None:
                members.pop(parked, None)
                if not members:
                    del self._parked[parked.group]

    @staticmethod
    def answered_early(parked: _Parked | None) -> bool:
        return parked is not None and parked.state == _ANSWERED

    # --- answering -----------------------------------------------------------------------------------------

    def answer(self, parked: _Parked | None, etag: str, scope: Scope, label: Label,
               still_waiting: Callable[[frozenset[str]], bool]) -> bool:
        """For a woken request whose new answer (``etag``, read after ``label``) differs from what it had: True
        if it has been answered already (by the loop, or now from the group's bytes); the caller then finishes
        normally, its writes dropped. False: answer the normal way (these bytes may become the group's).
        ``still_waiting(etags)``: whether a request with those ETags would get this answer (not a 304)."""
        if parked is None:
            return False
        with self._lock:
            if parked.state == _ANSWERED:
                return True
            parked.state = _OWN  # from here on, the loop leaves this request alone
        key = ("woken", parked.group, etag)
        entry = self.store.get(key)
        if entry is None:
            with self._lock:
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    parked.socket.when_finished(
                        lambda sent: self._first_sent(key, parked, scope, label, sent, still_waiting))
                    return False
            pending.wait(LEADER_WAIT_SECONDS)
            entry = self.store.get(key)
            if entry is None:
                return False
        sent, first_request_id = entry.payload
        self._send(parked, sent, first_request_id)
        time.sleep(0)  # under gevent: let the other woken requests answer before this one finishes
        return True

    def _first_sent(self, key: Hashable, first: _Parked, scope: Scope, label: Label, sent: bytes | None,
                    still_waiting: Callable[[frozenset[str]], bool]) -> None:
        try:
            # Kept only with the first request's id line in it, so that it can always be swapped for another's.
            if sent and _request_id_line(first.request_id) in sent and \
                    self.store.put(key, scope, label, (sent, first.request_id), len(sent)):
                self._answer_parked(first.group, scope, sent, first.request_id, still_waiting)
        finally:
            with self._lock:
                pending = self._pending.pop(key, None)
            if pending is not None:
                pending.set()

    def _answer_parked(self, group: Hashable, scope: Scope, sent: bytes, first_request_id: str,
                       still_waiting: Callable[[frozenset[str]], bool]) -> None:
        with self._lock:
            members = list(self._parked.get(group, ()))
        for parked in members:
            if not still_waiting(parked.etags) or not may_read_remembered(self.store, parked.actor, scope):
                continue
            with self._lock:
                if parked.state != _WAITING:
                    continue
                parked.state = _ANSWERED
            self._send(parked, sent, first_request_id)

    def _send(self, parked: _Parked, sent: bytes, first_request_id: str) -> None:
        try:
            parked.socket.answer_now(sent.replace(_request_id_line(first_request_id),
                                                  _request_id_line(parked.request_id), 1))
        except OSError:
            return  # the client is gone; its own request notices when it finishes
        self.answered += 1
        metrics.LONGPOLL_REPLAYED.inc()
