"""Rate limits per token and per client address, on writes and on searches, answered before anything runs.

**What is limited.** A *write* is any API request whose method is POST, PUT, PATCH or DELETE, except the reads
MLflow sends as POSTs (views declared ``@replayable``); a *search* is a view declared ``@search`` here (the
listings and searches that filter and sort many rows). Serving lookups, single-resource reads, health checks
and the console are not limited. Each request is counted under its token (a digest of the presented token,
whether or not it turns out valid) and under its client address (``REMOTE_ADDR``: behind a proxy, the proxy
must be trusted to set it, or every client shares the proxy's address); limits are ``REGISTRY_RATE_LIMIT_*``.

**Before any write.** The check is the app's first ``before_request`` hook, before authentication and before
the view: a 429 means nothing was done, so a client may send the request again after ``Retry-After``
seconds. (The MLflow 3.18 client repeats a create after a 429; a 429 that followed a committed write would
register a second version. No other path of ours answers 429: ``tests/api/test_retry_statuses.py``.)

**Per process.** Counters live in each worker's memory (the ``limits`` library, moving windows): no database
round trip per request, and limits keep working while the database is down. So the limit a client meets is
per process: with W workers on R replicas a client may get up to W x R times the configured rate if its
requests are spread over all of them (gunicorn hands each connection to whichever worker accepts it first).
Set the limits as what one process should accept from one client. A shared counter in PostgreSQL would be
exact but costs a write per limited request on the path it protects.
"""
from __future__ import annotations

import math
import os
import time
from typing import Callable, TypeVar

from flask import Flask, jsonify, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..auth import hash_token
from ..schemas import mlflow as mlflow_schema
from ..schemas.native import error_json
from .authn import CONSOLE_BLUEPRINT, PUBLIC_ENDPOINTS
from .mlflow.wire import is_mlflow_path

F = TypeVar("F", bound=Callable)

TOO_MANY = 429  # "not processed": answered only here, before any view runs
RATE_LIMITED = "RATE_LIMITED"  # the native error code
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def search(view: F) -> F:
    """Declare a view an expensive read, limited as a search."""
    view.rate_limited_as = "searches"
    return view


class Limiter:
    def __init__(self, settings) -> None:
        def items(text: str) -> list[RateLimitItem]:
            return parse_many(text) if text else []  # "": off (config.py has checked the rest)

        self._limits = {(who, kind): items(getattr(settings, f"rate_limit_{who}_{kind}"))
                        for who in ("token", "address") for kind in ("writes", "searches")}
        self._pid: int | None = None
        self._limiter: MovingWindowRateLimiter | None = None

    def _strategy(self) -> MovingWindowRateLimiter:
        # Built in the process that counts: a preloading master's storage (and its expiry timer) stays its own.
        if self._pid != os.getpid():
            self._limiter, self._pid = MovingWindowRateLimiter(MemoryStorage()), os.getpid()
        return self._limiter

    def refusal(self, kind: str, keys: dict[str, str | None]) -> tuple[str, int] | None:
        """Count the request; (which key, seconds to wait) if one of its limits is already reached."""
        limiter = self._strategy()
        checks: list[tuple[str, RateLimitItem, str]] = [
            (who, item, key) for who, key in keys.items() if key is not None
            for item in self._limits[(who, kind)]]
        for who, item, key in checks:  # test every limit before counting any: a refused request costs none
            if not limiter.test(item, kind, who, key):
                stats = limiter.get_window_stats(item, kind, who, key)
                return who, max(1, math.ceil(stats.reset_time - time.time()))
        for who, item, key in checks:
            limiter.hit(item, kind, who, key)
        return None


def _kind(app: Flask) -> str | None:
    view = app.view_functions.get(request.endpoint)
    if view is None:
        return None
    marked = getattr(view, "rate_limited_as", None)
    if marked is not None:
        return marked
    if request.method in _WRITE_METHODS and getattr(view, "replay_parse", None) is None:
        return "writes"
    return None


def _token_key() -> str | None:
    header = request.headers.get("Authorization") or ""
    scheme, _, credentials = header.partition(" ")
    return hash_token(credentials.strip())[:32] if credentials.strip() else None


def _too_many(who: str, retry_after: int):
    message = (f"Too many requests from this {who}; nothing was done. Try again in {retry_after} s.")
    if is_mlflow_path(request.path):
        response = mlflow_schema.mlflow_error("REQUEST_LIMIT_EXCEEDED", message, TOO_MANY)
    else:
        response = jsonify(error_json(RATE_LIMITED, message, {"limited_by": who}))
        response.status_code = TOO_MANY
    response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: Flask) -> None:
    """Must be the first ``before_request`` hook registered (``api.register`` does so)."""
    limiter = Limiter(app.config["REGISTRY_SETTINGS"])

    @app.before_request
    def limit_rate():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS or request.blueprint == CONSOLE_BLUEPRINT:
            return None
        kind = _kind(app)
        if kind is None:
            return None
        refused = limiter.refusal(kind, {"token": _token_key(), "address": request.remote_addr})
        return None if refused is None else _too_many(*refused)
