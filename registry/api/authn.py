"""Authentication of every request but the health checks, before any view runs.

With ``REGISTRY_AUTH=disabled`` (local experiments only) every caller is an admin named by the
``X-Registry-Actor`` header; the server says so loudly at start-up and on every response.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone

from flask import Flask, g, request

from ..auth import Actor, hash_token, token_from_authorization
from ..changes import Hub, hub_for
from ..services import identities

log = logging.getLogger("registry.auth")

ACTOR_HEADER = "X-Registry-Actor"
TOKENS_KEY = "registry_tokens"
PUBLIC_ENDPOINTS = {"health.healthz", "health.readyz", "static"}


def current_actor() -> Actor:
    return g.actor


class TokenCache:
    """Token digest -> principal, per process, so a busy client costs no query per request.

    Coherent like the serving caches: dropped when any token is revoked (a notification) and bypassed while
    the change listener is down; expiry is checked on every hit. Only successful lookups are cached. The cached
    Actor carries the token's id (``token_id``): a token minted in the request records it as its parent.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Actor, datetime | None]] = {}
        self._epoch = 0
        hub.on_change(self._on_change)

    def _on_change(self, message: dict | None) -> None:
        if message is None or "tokens" in message:
            with self._lock:
                self._entries.clear()
                self._epoch += 1

    def cached(self, token: str) -> Actor | None:
        """The token's principal if the cache knows it and it is still valid; None means "ask the database"."""
        if not self.hub.healthy:
            return None
        hit = self._entries.get(hash_token(token))
        if hit is not None and (hit[1] is None or hit[1] > datetime.now(timezone.utc)):
            return hit[0]
        return None

    def authenticate(self, token: str) -> Actor:
        hit = self.cached(token)
        if hit is not None:
            return hit
        digest = hash_token(token)
        epoch = self._epoch
        actor, expires_at = identities.authenticate_with_expiry(token)
        with self._lock:
            if self.hub.healthy and epoch == self._epoch:
                if len(self._entries) >= self.MAX_ENTRIES:
                    self._entries.clear()
                self._entries[digest] = (actor, expires_at)
        return actor


def install(app: Flask) -> None:
    enabled = app.config["REGISTRY_SETTINGS"].auth_enabled
    if not enabled:
        log.warning(
            "\n%s\nAUTHENTICATION IS DISABLED (REGISTRY_AUTH=disabled): every caller is an admin.\n"
            "Use this only for local experiments, never on a shared network.\n%s", "!" * 78, "!" * 78,
        )

    hub = hub_for(app)
    tokens = app.extensions[TOKENS_KEY] = TokenCache(hub)

    @app.before_request
    def authenticate():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
            return  # unknown routes answer 404 without revealing anything; health checks stay open
        if enabled:
            hub.ensure_listening()
            g.actor = tokens.authenticate(token_from_authorization(request.headers.get("Authorization")))
        else:
            g.actor = Actor.named(request.headers.get(ACTOR_HEADER), is_admin=True)

    if not enabled:
        @app.after_request
        def warn(response):
            response.headers["X-Registry-Auth"] = "disabled"
            return response
