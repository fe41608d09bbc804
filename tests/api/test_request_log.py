"""The request log line (registry/telemetry/requests.py): one per request with request id, actor, dialect, route
template, method, status and duration; by default not for the reads the replay cache answers."""
from __future__ import annotations

import logging

import pytest

from registry import create_app
from registry.extensions import CACHES_KEY, db
from registry.telemetry.requests import RequestTelemetry

from .support import listening


def lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "registry.request"]


def test_a_request_gets_one_line_with_who_what_and_how_long(secure_client, make_user, caplog):
    admin = make_user("logger-admin", admin=True)
    caplog.set_level(logging.INFO, logger="registry.request")
    response = secure_client.post("/api/v1/models", json={"name": "logged"},
                                  headers={**admin, "X-Request-Id": "log-1"})
    assert response.status_code == 201
    (line,) = lines(caplog)
    assert (line.actor, line.dialect, line.route, line.method, line.status) == (
        "logger-admin", "native", "/api/v1/models", "POST", 201)
    assert line.duration_ms > 0 and line.getMessage() == "request"


def test_a_refused_request_is_logged_without_an_actor(secure_client, caplog):
    caplog.set_level(logging.INFO, logger="registry.request")
    secure_client.get("/api/v1/models", headers={"Authorization": "Bearer reg_not-a-real-token-at-all"})
    (line,) = lines(caplog)
    assert (line.actor, line.status, line.route) == (None, 401, "/api/v1/models")


@pytest.mark.parametrize("mode", ["uncached", "all", "off"])
def test_replayed_reads_are_logged_only_when_asked(session_database_url, caplog, mode):
    app = create_app({"database_url": session_database_url, "auth_enabled": False, "request_log": mode})
    try:
        telemetry = app.wsgi_app
        assert isinstance(telemetry, RequestTelemetry)
        client = app.test_client()
        listening(app)
        client.get("/api/v1/models/never-there/stages/Production")  # parsed and answered by Flask: 404
        assert client.post("/api/v1/models", json={"name": f"replayed-{mode}"}).status_code == 201
        path = f"/api/v1/models/replayed-{mode}/stages/Production"
        client.get(path)
        caplog.set_level(logging.INFO, logger="registry.request")
        caplog.clear()
        replay = app.extensions["registry_replay"]
        hits, reads = replay.hits, 0
        # The listener may still deliver the create's notification, which drops the cached answer once: read
        # until some reads were replayed, and count them.
        while reads < 3 or (replay.hits == hits and reads < 50):
            client.get(path)
            reads += 1
        replayed = replay.hits - hits
        assert replayed >= 1
        expected = {"all": reads, "uncached": reads - replayed, "off": 0}[mode]
        assert len(lines(caplog)) == expected
        caplog.clear()
        client.get("/api/v1/models/never-there")
        assert len(lines(caplog)) == (0 if mode == "off" else 1)
    finally:
        app.extensions[CACHES_KEY].hub.dispatch(None)
        with app.app_context():
            from registry.services import models
            from registry.auth import SYSTEM

            models.delete_model(SYSTEM, f"replayed-{mode}")
            db.engine.dispose()
