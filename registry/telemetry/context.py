"""What the telemetry of one request knows, readable below the API without importing Flask.

The request id lives in a context variable, set by the request middleware (``telemetry/requests.py``) for the
length of a request: log records carry it (``telemetry/logs.py``) and the audit trail records it on every event
written in that request (``audit._append``), so an event leads to the log lines of the request that made it.
The WSGI environ keys are how the layers that route and authenticate a request (Flask, the replay cache) tell
the middleware what it was: route template, endpoint and actor.
"""
from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("registry_request_id", default=None)

ROUTE = "registry.telemetry.route"        # the URL rule that matched ("/api/v1/models/<name>"), never a raw path
ENDPOINT = "registry.telemetry.endpoint"  # its endpoint ("native_serving.get_stage"): says the dialect
ACTOR = "registry.telemetry.actor"        # who asked (a user name; never a token)
REPLAYED = "registry.telemetry.replayed"  # answered from the replay cache (cache/responses.py)


def current_request_id() -> str | None:
    return request_id.get()
