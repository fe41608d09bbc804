"""The outermost WSGI layer: a request id for every request, and one metric observation and one log line
when it is answered.

``X-Request-Id`` is taken from the caller when it is safe to repeat in logs and headers (1-128 characters of
letters, digits and ``._:-``; anything else is replaced, not refused: a bad id must not fail a request), else
generated; it is returned on every response, set in ``context.request_id`` for the log records and audit
events of the request, and in the environ as ``HTTP_X_REQUEST_ID`` for whatever runs inside.

What the request *was* (route template, endpoint, actor) is told by the layer that knew it, in the environ
(``context.ROUTE`` ...): Flask's hooks (``install_flask_hooks``) or the replay cache (``api/replay.py``), which
answers most serving reads before Flask runs. A request neither routed reports route ``<unmatched>``.

**Which requests are logged** (REGISTRY_REQUEST_LOG): by default every request but the reads the replay cache
answers (``uncached``): those are the serving hot path, thousands a second of the same few answers, counted by
the metrics; a log line each costs them about a third more server CPU per request
(tests/perf/run_observability.py, where the metrics and the default log cost 1-4 us, about 1%). ``all`` logs
them too; ``off`` logs none. A line is INFO: REGISTRY_LOG_LEVEL=WARNING silences them as well.

The time measured is until the response starts (the app returned its status and headers): for every answer
here the body is already built then. A long-poll that waited (``X-Registry-Waited: yes``) is reported under its
route template followed by ``?wait``, so that its seconds of waiting stay out of the route's latency.
"""
from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import Callable, Iterable

from flask import Flask, g, request

from . import context, metrics

log = logging.getLogger("registry.request")

HEADER = "X-Request-Id"
_ENVIRON_HEADER = "HTTP_X_REQUEST_ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}\Z")
UNMATCHED = "<unmatched>"
WAITED = "X-Registry-Waited"  # set by the serving long-poll (api/native/serving.py)


def request_id_from(value: str | None) -> str:
    if value and _SAFE_ID.match(value):
        return value
    return f"{_process_prefix}{next(_sequence):016x}"


# Generated ids (32 hex digits): this process's random prefix (16, new in every process, forked workers included)
# and a counter (16). Unique like a UUID4 per request, at a seventh of its cost (it read os.urandom each time:
# ~2 us of a ~200 us cached read); an id is a correlation handle, not a secret.
def _new_process_prefix() -> None:
    global _process_prefix, _sequence
    _process_prefix, _sequence = secrets.token_hex(8), itertools.count()


_new_process_prefix()
os.register_at_fork(after_in_child=_new_process_prefix)


_DIALECTS = {"web": "console", "health": "health", "metrics": "metrics", "mlflow": "mlflow"}


def dialect_of(endpoint: str | None) -> str:
    """The API dialect an endpoint belongs to, from its blueprint's name."""
    if endpoint is None:
        return "none"
    blueprint = endpoint.partition(".")[0]
    if blueprint.startswith("native"):
        return "native"
    if blueprint.startswith("databricks"):
        return "databricks"
    return _DIALECTS.get(blueprint, "other")


class RequestTelemetry:
    def __init__(self, wsgi_app: Callable, *, observe: bool, log_requests: str) -> None:
        self.wsgi_app = wsgi_app
        self.observe = observe
        self.log_all = log_requests == "all"
        self.log_uncached = log_requests == "uncached"

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        rid = request_id_from(environ.get(_ENVIRON_HEADER))
        environ[_ENVIRON_HEADER] = rid
        token = context.request_id.set(rid)
        started = time.perf_counter()
        status_line = ""
        waited = False

        def respond(status: str, headers: list, exc_info=None):
            nonlocal status_line, waited
            status_line = status
            headers = list(headers)
            waited = (WAITED, "yes") in headers
            headers.append((HEADER, rid))
            return start_response(status, headers, exc_info)

        try:
            return self.wsgi_app(environ, respond)
        finally:
            self._record(environ, status_line[:3] or "000", time.perf_counter() - started, waited)
            context.request_id.reset(token)

    def _record(self, environ: dict, status: str, seconds: float, waited: bool) -> None:
        endpoint = environ.get(context.ENDPOINT)
        route = environ.get(context.ROUTE, UNMATCHED)
        if waited:
            route += "?wait"
        dialect = dialect_of(endpoint)
        method = environ.get("REQUEST_METHOD", "")
        if self.observe:
            metrics.observe_request(dialect, route, method, status, seconds)
        if self.log_all or (self.log_uncached and not environ.get(context.REPLAYED)):
            log.info("request", extra={
                "actor": environ.get(context.ACTOR), "dialect": dialect, "route": route, "method": method,
                "status": int(status), "duration_ms": round(seconds * 1000, 3),
            })


def install_flask_hooks(app: Flask) -> None:
    """Tell the middleware the route and actor of requests Flask answers (errors included: Flask runs
    ``after_request`` for the responses of error handlers too)."""

    @app.after_request
    def note_route_and_actor(response):
        environ = request.environ
        rule = request.url_rule
        if rule is not None:
            environ[context.ROUTE] = rule.rule
            environ[context.ENDPOINT] = rule.endpoint
        actor = g.get("actor")
        if actor is not None:
            environ[context.ACTOR] = actor.name
        return response

