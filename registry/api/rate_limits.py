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

**Failed password sign-ins.** HTTP Basic ``user:password`` is checked against a slow, salted hash (scrypt:
tens of milliseconds of CPU each), so a client sending wrong passwords fast is a cheap way to load a worker and
a way to guess passwords. ``checked_sign_in`` counts each *failed* check under the client address and under the
user name (``REGISTRY_RATE_LIMIT_ADDRESS_SIGN_INS`` / ``..._USER_SIGN_INS``); once either is over its limit,
the next password check of that address or user name is answered 429 with Retry-After *before* any hashing.
A successful check counts nothing, and a caller whose sign-in this process already verified is answered from
the credential cache (``api/authn.py``) without coming here, so a limit reached by someone guessing a user's
password does not stop that user's clients that are already signed in; a new sign-in of that user name (or from
that address) waits like the guesser, since a password cannot be told right without hashing it. The 429 comes
before the view runs too (authentication is a ``before_request`` hook), so nothing was done.

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

from flask import Flask, abort, current_app, jsonify, request
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from ..auth import hash_token
from ..errors import Unauthenticated
from ..schemas import mlflow as mlflow_schema
from ..schemas.native import error_json
from .mlflow.wire import is_mlflow_path

F = TypeVar("F", bound=Callable)
T = TypeVar("T")

TOO_MANY = 429  # "not processed": answered only here, before any view runs
RATE_LIMITED = "RATE_LIMITED"  # the native error code
LIMITER_KEY = "registry_rate_limiter"  # the app's Limiter, in app.extensions
_WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SIGN_INS = "sign_ins"
# What is counted under which key: (who, kind), each limited by the setting rate_limit_<who>_<kind>.
LIMITED = (("token", "writes"), ("token", "searches"), ("address", "writes"), ("address", "searches"),
           ("address", SIGN_INS), ("user", SIGN_INS))
_REFUSED = {"writes": "Too many requests from this {who}; nothing was done. Try again in {s} s.",
            "searches": "Too many requests from this {who}; nothing was done. Try again in {s} s.",
            SIGN_INS: "Too many failed sign-ins {whose}; try again in {s} s."}
_WHOSE = {"address": "from this address", "user": "for this user name"}


def search(view: F) -> F:
    """Declare a view an expensive read, limited as a search."""
    view.rate_limited_as = "searches"
    return view


class Limiter:
    def __init__(self, settings) -> None:
        def items(text: str) -> list[RateLimitItem]:
            return parse_many(text) if text else []  # "": off (config.py has checked the rest)

        self._limits = {(who, kind): items(getattr(settings, f"rate_limit_{who}_{kind}")) for who, kind in LIMITED}
        self._pid: int | None = None
        self._limiter: MovingWindowRateLimiter | None = None

    def _strategy(self) -> MovingWindowRateLimiter:
        # Built in the process that counts: a preloading master's storage (and its expiry timer) stays its own.
        if self._pid != os.getpid():
            self._limiter, self._pid = MovingWindowRateLimiter(MemoryStorage()), os.getpid()
        return self._limiter

    def _checks(self, kind: str, keys: dict[str, str | None]) -> list[tuple[str, RateLimitItem, str]]:
        return [(who, item, key) for who, key in keys.items() if key is not None
                for item in self._limits[(who, kind)]]

    def refused(self, kind: str, keys: dict[str, str | None]) -> tuple[str, int] | None:
        """(which key, seconds to wait) if one of the limits of ``kind`` is already reached; counts nothing."""
        limiter = self._strategy()
        for who, item, key in self._checks(kind, keys):
            if not limiter.test(item, kind, who, key):
                stats = limiter.get_window_stats(item, kind, who, key)
                return who, max(1, math.ceil(stats.reset_time - time.time()))
        return None

    def count(self, kind: str, keys: dict[str, str | None]) -> None:
        limiter = self._strategy()
        for who, item, key in self._checks(kind, keys):
            limiter.hit(item, kind, who, key)

    def refusal(self, kind: str, keys: dict[str, str | None]) -> tuple[str, int] | None:
        """Count the request; (which key, seconds to wait) if one of its limits is already reached."""
        refused = self.refused(kind, keys)  # every limit tested before any is counted: a refusal costs none
        if refused is None:
            self.count(kind, keys)
        return refused


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


def checked_sign_in(user: str, check: Callable[[], T]) -> T:
    """``check()``: a password check of ``user`` (a slow hash), unless this address or this user name failed
    too often lately: then 429 with Retry-After, before any hashing. A check that fails (Unauthenticated) is
    counted under both; one that succeeds counts nothing."""
    limiter: Limiter = current_app.extensions[LIMITER_KEY]
    # The user name is the caller's text (any length): counted under a digest of it, as tokens are.
    keys = {"address": request.remote_addr, "user": hash_token(user)[:32]}
    refused = limiter.refused(SIGN_INS, keys)
    if refused is not None:
        abort(_too_many(SIGN_INS, *refused))
    try:
        return check()
    except Unauthenticated:
        limiter.count(SIGN_INS, keys)
        raise


def _too_many(kind: str, who: str, retry_after: int):
    message = _REFUSED[kind].format(who=who, whose=_WHOSE.get(who, ""), s=retry_after)
    if is_mlflow_path(request.path):
        response = mlflow_schema.mlflow_error("REQUEST_LIMIT_EXCEEDED", message, TOO_MANY)
    else:
        response = jsonify(error_json(RATE_LIMITED, message, {"limited_by": who}))
        response.status_code = TOO_MANY
    response.headers["Retry-After"] = str(retry_after)
    return response


def install(app: Flask) -> None:
    """Must be the first ``before_request`` hook registered (``api.register`` does so)."""
    from .authn import CONSOLE_BLUEPRINT, PUBLIC_ENDPOINTS  # (authn imports this module for checked_sign_in)

    limiter = app.extensions[LIMITER_KEY] = Limiter(app.config["REGISTRY_SETTINGS"])

    @app.before_request
    def limit_rate():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS or request.blueprint == CONSOLE_BLUEPRINT:
            return None
        kind = _kind(app)
        if kind is None:
            return None
        refused = limiter.refusal(kind, {"token": _token_key(), "address": request.remote_addr})
        return None if refused is None else _too_many(kind, *refused)
