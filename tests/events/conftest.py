"""Fixtures for delivery tests: a migrated database of its own (deliveries need real commits, seen by the
dispatcher's connections), an app on it whose network policy lets the loopback receiver in, and dispatchers."""
from __future__ import annotations

import pytest

from registry import create_app
from registry.extensions import db
from registry.events.dispatcher import for_app

LOOPBACK_ALLOWED = {"webhook_allow_http": True, "webhook_allow_networks": ("127.0.0.0/8",),
                    "webhook_backoff_ms": 50, "webhook_timeout_seconds": 5}


@pytest.fixture
def live_app(fresh_database_url):
    application = create_app({"database_url": fresh_database_url, "auth_enabled": False, **LOOPBACK_ALLOWED})
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def live(live_app):
    with live_app.app_context():
        yield live_app


@pytest.fixture
def dispatchers(live_app):
    """``dispatchers(n=1, **settings)`` starts n dispatchers on the live app (each its own threads)."""
    started = []

    def start(n: int = 1, **overrides):
        for _ in range(n):
            app = live_app if not overrides else create_app(
                {"database_url": live_app.config["SQLALCHEMY_DATABASE_URI"], "auth_enabled": False,
                 **LOOPBACK_ALLOWED, **overrides})
            started.append(for_app(app).start())
        return started

    yield start
    for dispatcher in started:
        dispatcher.stop()
