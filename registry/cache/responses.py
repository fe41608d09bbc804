"""Replays rendered read responses before the web framework runs.

Serving systems ask the same few questions (current Production, an alias, one version, one model) thousands
of times a second; once the data is cached, routing, request objects, hooks and response objects cost most of
an answer's time. So this WSGI middleware keeps the response the app rendered (status, headers, body) and
answers the next identical request with those bytes.

"Identical" is decided on the *parsed* request, never on raw bytes: ``request_key(environ)`` (given by the
API layer) routes the request and parses its parameters with the very function its view will use, so two
requests share a key exactly when their view would see the same arguments. A request that is not a
replayable read, or that does not parse, has no key and goes to the app untouched.

A response is kept only if its view said which model it is about (``SCOPE`` in the environ) and under the
store's freshness rule, labelled before the app ran.

**Answered directly.** On a miss, ``answer_directly(environ, key)`` (given by the API layer) may render the
answer without the app: a few serving reads can, for a caller it knows from memory, with the very function
their view answers through (``api/replay.py``). That costs a third of the app's way, and the first read of
each model after a deploy or a change is such a miss. When it gives nothing, the app answers. Who asks matters only for *whether* they may see it:
``may_replay(environ, scope)`` must prove it from memory alone (a remembered token and level); otherwise the
app answers, exactly as it always has.

**Stale while unavailable.** When the app answered a replayable read with a failure because the database is
unreachable (it marks the environ with ``UNAVAILABLE``), ``last_known(environ, key)`` may give the answer
this process held when it lost contact, and how old it is; it is then sent instead, marked with
``Warning: 110`` and ``X-Registry-Stale: <seconds>``. Whether that is allowed is the API's decision
(``api/replay.py``).
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, Iterable

from ..telemetry.context import REPLAYED
from . import Caches
from .hub import Scope

SCOPE = "registry.replay.scope"
# Set by the API's error mapping on a request that failed because the database is unreachable.
UNAVAILABLE = "registry.db_unavailable"
STALE_WARNING = ("Warning", '110 - "Response is Stale"')
_KEPT_STATUSES = ("200", "304", "404")


class ResponseReplay:
    def __init__(self, wsgi_app: Callable, caches: Caches, request_key: Callable[[dict], Hashable | None],
                 may_replay: Callable[[dict, Scope], bool],
                 last_known: Callable[[dict, Hashable], tuple[Any, float] | None] | None = None,
                 answer_directly: Callable[[dict, Hashable], tuple[str, list, bytes, Scope] | None] | None = None
                 ) -> None:
        self.wsgi_app = wsgi_app
        self.answer_directly = answer_directly
        self.last_known = last_known
        self.caches = caches
        self.request_key = request_key
        self.may_replay = may_replay
        self.hits = 0  # answers replayed by this process (tests and diagnostics; not exact under threads)
        self.direct = 0  # misses answered directly (the same)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        key = self.request_key(environ)
        if key is None:
            return self.wsgi_app(environ, start_response)
        hub, store = self.caches.hub, self.caches.store
        hub.ensure_listening()  # after a fork, this process must listen before trusting its cache
        entry = store.get(key)
        if entry is not None and self.may_replay(environ, entry.scope):
            self.hits += 1
            environ[REPLAYED] = True
            status, headers, body = entry.payload
            start_response(status, list(headers))
            return [body]
        label = hub.label()  # before the app reads anything
        direct = None if self.answer_directly is None else self.answer_directly(environ, key)
        if direct is not None:
            self.direct += 1
            status, headers, body, scope = direct
            start_response(status, list(self.keep(key, scope, label, status, headers, body)))
            return [body]
        captured: list = []

        def capture(status: str, headers: list, exc_info: Any = None):
            # Held back until the app returns: a failed read may yet be answered with the last known answer.
            captured[:] = [status, headers, exc_info]
            return _no_write

        result = self.wsgi_app(environ, capture)
        if environ.get(UNAVAILABLE) and self.last_known is not None:
            found = self.last_known(environ, key)
            if found is not None:
                _close(result)
                (status, headers, body), age = found[0].payload, found[1]
                start_response(status, [*headers, STALE_WARNING, ("X-Registry-Stale", str(int(age)))])
                return [body]
        if captured:
            start_response(*captured)
            captured.pop()
        scope = environ.get(SCOPE)
        if scope is None or not captured or not captured[0].startswith(_KEPT_STATUSES):
            return result
        try:
            body = b"".join(result)
        finally:
            _close(result)
        status, headers = captured
        self.keep(key, scope, label, status, headers, body)
        return [body]

    def keep(self, key: Hashable, scope: Scope, label: Any, status: str, headers: list, body: bytes) -> list:
        """Keep a rendered answer for replay, if its status may be kept, under the freshness rule (``label``:
        taken before what it renders was read). Returns its headers."""
        if not status.startswith(_KEPT_STATUSES):
            return headers
        headers = _shared(headers)
        self.caches.store.put(key, scope, label, (status, headers, body), _size(headers, body))
        return headers


def _size(headers: tuple[tuple[str, str], ...], body: bytes) -> int:
    return len(body) + sum(len(n) + len(v) for n, v in headers)


def _no_write(_data: bytes) -> None:
    raise RuntimeError("the replayed app must return its body, not write it")


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


_HEADERS: dict[tuple[str, str], tuple[str, str]] = {}
_MAX_SHARED_HEADERS = 4096


def _shared(headers: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The headers, with repeated (name, value) pairs shared between entries: most are the same for every
    answer (Content-Type, Cache-Control, a few Content-Lengths)."""
    out = []
    for header in headers:
        shared = _HEADERS.get(header)
        if shared is None:
            shared = header = (str(header[0]), str(header[1]))
            if header[0] != "ETag" and len(_HEADERS) < _MAX_SHARED_HEADERS:
                shared = _HEADERS.setdefault(header, header)
        out.append(shared)
    return tuple(out)
