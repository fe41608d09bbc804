"""Authentication of every request but the health checks, before any view runs.

With ``REGISTRY_AUTH=disabled`` (local experiments only) every caller is an admin named by the
``X-Registry-Actor`` header; the server says so loudly at start-up and on every response.
"""
from __future__ import annotations

import logging

from flask import Flask, g, request

from ..auth import Actor, token_from_authorization
from ..services import identities

log = logging.getLogger("registry.auth")

ACTOR_HEADER = "X-Registry-Actor"
PUBLIC_ENDPOINTS = {"health.healthz", "health.readyz", "static"}


def current_actor() -> Actor:
    return g.actor


def install(app: Flask) -> None:
    enabled = app.config["REGISTRY_SETTINGS"].auth_enabled
    if not enabled:
        log.warning(
            "\n%s\nAUTHENTICATION IS DISABLED (REGISTRY_AUTH=disabled): every caller is an admin.\n"
            "Use this only for local experiments, never on a shared network.\n%s", "!" * 78, "!" * 78,
        )

    @app.before_request
    def authenticate():
        if request.endpoint is None or request.endpoint in PUBLIC_ENDPOINTS:
            return  # unknown routes answer 404 without revealing anything; health checks stay open
        if enabled:
            g.actor = identities.authenticate(token_from_authorization(request.headers.get("Authorization")))
        else:
            g.actor = Actor.named(request.headers.get(ACTOR_HEADER), is_admin=True)

    if not enabled:
        @app.after_request
        def warn(response):
            response.headers["X-Registry-Auth"] = "disabled"
            return response
