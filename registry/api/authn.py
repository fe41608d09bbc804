"""Authentication of every request but the health checks, before any view runs.

A credential is a token (Bearer, or Basic with the token as the password), or with Basic a user's password
(users made through MLflow's auth API have one): the secret is tried as a token first, then as the named
user's password. Whose a credential is, is remembered per process (``cache/access.py``: dropped when any
token is revoked or any user's password, admin role or existence changes; expiry checked on every hit), so
a busy client costs no query per request, and a password's slow hash is computed once. Failed password checks
are rate limited per address and per user name, refused (Too Many Requests) before any hashing (``rate_limits.py``,
``checked_sign_in``). The actor carries the token's id
(``token_id``): a token minted in the request records it as its parent.

With ``REGISTRY_AUTH=disabled`` (local experiments only) every caller is an admin named by the
``X-Registry-Actor`` header; the server says so loudly at start-up and on every response.
"""
from __future__ import annotations

import logging

from flask import Flask, g, request

from ..auth import Actor, credentials_from_authorization, hash_token, password_digest
from ..cache.store import Store
from ..errors import Unauthenticated
from ..cache import access as remembered
from ..extensions import caches
from ..services import identities
from .rate_limits import checked_sign_in

log = logging.getLogger("registry.auth")

ACTOR_HEADER = "X-Registry-Actor"
PUBLIC_ENDPOINTS = {"health.healthz", "health.readyz", "static"}
CONSOLE_BLUEPRINT = "web"
# GET /metrics checks its own token (an admin's, or a metrics-scoped one): api/metrics.py.
METRICS_BLUEPRINT = "metrics"


def current_actor() -> Actor:
    return g.actor


def authenticate(header: str | None) -> Actor:
    """The actor an ``Authorization`` header names (Unauthenticated if none, unknown, expired or revoked)."""
    user, secret = credentials_from_authorization(header)
    if user is not None:
        known = remembered.cached_actor(caches().store, password_digest(user, secret), "password")
        if known is not None:
            return known
    try:
        return authenticate_token(secret)
    except Unauthenticated:
        if user is None:
            raise
    return remembered.actor(caches().store, password_digest(user, secret),
                            lambda: checked_sign_in(user, lambda: identities.authenticate_password(user, secret)),
                            "password")


def remembered_actor(store: Store, header: str | None) -> Actor | None:
    """The actor a header names if this process remembers it (no query; for the response replay)."""
    try:
        user, secret = credentials_from_authorization(header)
    except Unauthenticated:
        return None
    known = remembered.cached_actor(store, hash_token(secret))
    if known is None and user is not None:
        known = remembered.cached_actor(store, password_digest(user, secret), "password")
    return known


def authenticate_token(token: str) -> Actor:
    """The actor a token belongs to (Unauthenticated if unknown, expired or revoked); the console's session
    token goes through here too, so revoking it, or the token it was made with, ends the session at once."""
    current = caches()
    current.hub.ensure_listening()
    return remembered.actor(current.store, hash_token(token), lambda: identities.authenticate_with_expiry(token))


def install(app: Flask) -> None:
    enabled = app.config["REGISTRY_SETTINGS"].auth_enabled
    if not enabled:
        log.warning(
            "\n%s\nAUTHENTICATION IS DISABLED (REGISTRY_AUTH=disabled): every caller is an admin.\n"
            "Use this only for local experiments, never on a shared network.\n%s", "!" * 78, "!" * 78,
        )

    @app.before_request
    def authenticate_request():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
            return  # unknown routes answer 404 without revealing anything; health checks stay open
        if request.blueprint == CONSOLE_BLUEPRINT:
            return  # the console signs its users in with a session cookie (registry/web/session.py)
        if request.blueprint == METRICS_BLUEPRINT:
            return
        if enabled:
            g.actor = authenticate(request.headers.get("Authorization"))
        else:
            caches().hub.ensure_listening()
            g.actor = Actor.named(request.headers.get(ACTOR_HEADER), is_admin=True)

    if not enabled:
        @app.after_request
        def warn(response):
            response.headers["X-Registry-Auth"] = "disabled"
            return response
