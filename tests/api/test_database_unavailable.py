"""While PostgreSQL cannot be reached, every request is a 503 with ``Retry-After`` in its dialect's error shape
(never a 500 ``INTERNAL``), and the log says so once per outage rather than with a traceback per request."""
from __future__ import annotations

import logging

import pytest

from registry import create_app
from registry.extensions import CACHES_KEY, db
from tests.server import free_port

from .support import assert_error

ADMIN = {"X-Registry-Actor": "alice"}


@pytest.fixture
def unreachable_app():
    """An app whose database is a port nothing listens on: every connection attempt is refused."""
    application = create_app({"database_url": f"postgresql://postgres@127.0.0.1:{free_port()}/registry",
                              "auth_enabled": False})
    application.config["TESTING"] = True
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


def _retry_after(response) -> int:
    value = response.headers.get("Retry-After")
    assert value is not None and value.isdigit(), dict(response.headers)
    return int(value)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/models/churn/stages/Production"),
    ("GET", "/api/v1/models/churn/stages/Production?wait=1"),
    ("POST", "/api/v1/models"),
    ("GET", "/api/v1/models"),
], ids=["serving", "long-poll", "create", "search"])
def test_native_requests_are_503_unavailable_with_retry_after(unreachable_app, method, path):
    response = unreachable_app.test_client().open(path, method=method, json={"name": "churn"}, headers=ADMIN)
    assert_error(response, 503, "UNAVAILABLE")
    assert _retry_after(response) >= 1


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/2.0/mlflow/registered-models/get?name=churn"),
    ("POST", "/api/2.0/mlflow/model-versions/create"),
    ("GET", "/api/2.0/mlflow/registered-models/search"),
    ("GET", "/api/2.0/mlflow/transition-requests/list?name=churn&version=1"),
], ids=["mlflow-get", "mlflow-create", "mlflow-search", "databricks-requests"])
def test_wire_requests_are_503_temporarily_unavailable(unreachable_app, method, path):
    response = unreachable_app.test_client().open(path, method=method, json={"name": "churn", "source": "s3://b/1"},
                                                  headers=ADMIN)
    assert response.status_code == 503, response.get_data(as_text=True)
    body = response.get_json()
    assert body == {"error_code": "TEMPORARILY_UNAVAILABLE", "message": body["message"]}
    assert "database" in body["message"]
    assert _retry_after(response) >= 1


def test_readyz_is_503_with_retry_after(unreachable_app):
    response = unreachable_app.test_client().get("/readyz")
    assert response.status_code == 503
    assert _retry_after(response) >= 1


def test_an_outage_is_logged_once_not_per_request(unreachable_app, caplog):
    client = unreachable_app.test_client()
    with caplog.at_level(logging.INFO, logger="registry"):
        for _ in range(5):
            client.get("/api/v1/models", headers=ADMIN)
            client.get("/api/2.0/mlflow/registered-models/search", headers=ADMIN)
    # Each request still has its access line (registry.request, INFO): the outage is what must be said once.
    requests_log = [r for r in caplog.records if r.name not in ("registry.cache", "registry.request")]
    assert sum(r.name == "registry.request" for r in caplog.records) == 10
    listener_log = [r for r in caplog.records if r.name == "registry.cache"]
    assert len(requests_log) == 1, [r.getMessage() for r in requests_log]
    assert len(listener_log) <= 1, [r.getMessage() for r in listener_log]  # its own one line, not one per retry
    assert requests_log[0].levelno == logging.WARNING and requests_log[0].exc_info is None
    assert "database unavailable" in requests_log[0].getMessage()
