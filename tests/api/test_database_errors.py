"""When a statement fails: logs carry no parameter values, and a statement timeout is a 503, not a 500."""
from __future__ import annotations

import logging
from contextlib import closing

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from registry import create_app
from registry.extensions import db

from .support import assert_error

# Stands for a value a caller sent (a filter, a tag, a description): it must not reach the logs.
NEEDLE = "needle-5f1e2c"


def test_a_statement_error_does_not_carry_its_parameters(ctx, db_session):
    with pytest.raises(DBAPIError) as info:
        db_session.execute(text("SELECT :needle, 1 / :zero"), {"needle": NEEDLE, "zero": 0})
    assert "division by zero" in str(info.value)
    assert NEEDLE not in str(info.value)


def test_an_unexpected_statement_error_logs_no_parameter_value(client, monkeypatch, caplog):
    from registry.db import filters

    def failing(conditions):
        return [text("1 / :zero = 1 AND :needle = :needle").bindparams(zero=0, needle=NEEDLE)]

    monkeypatch.setattr(filters, "model_clauses", failing)
    with caplog.at_level(logging.ERROR, logger="registry"):
        assert_error(client.get("/api/v1/models"), 500, "INTERNAL")
    assert "division by zero" in caplog.text
    assert NEEDLE not in caplog.text


@pytest.fixture
def impatient_app(fresh_database_url):
    """Statements are cancelled after 100 ms (the smallest timeout the settings allow)."""
    application = create_app({"database_url": fresh_database_url, "auth_enabled": False,
                              "statement_timeout_ms": 100})
    application.config["TESTING"] = True
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def models_locked(fresh_database_url):
    """Another transaction holds registered_models exclusively: any statement reading it waits, then times out."""
    with closing(psycopg2.connect(fresh_database_url)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE registered_models IN ACCESS EXCLUSIVE MODE")
            yield
        connection.rollback()


@pytest.mark.parametrize("path, status, code", [
    (f"/api/v1/models?tag=k={NEEDLE}", 503, "UNAVAILABLE"),
    (f"/api/2.0/mlflow/registered-models/search?filter=tags.k+%3D+%27{NEEDLE}%27", 503, "TEMPORARILY_UNAVAILABLE"),
], ids=["native", "mlflow"])
def test_a_statement_timeout_is_503_in_the_dialects_shape(impatient_app, models_locked, caplog, path, status,
                                                          code):
    with caplog.at_level(logging.INFO, logger="registry"):
        response = impatient_app.test_client().get(path, headers={"X-Registry-Actor": "alice"})
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    if path.startswith("/api/v1"):
        assert_error(response, status, code)
    else:
        assert body == {"error_code": code, "message": body["message"]}
        assert "timed out" in body["message"] or "timeout" in body["message"]
    assert "statement timeout" in caplog.text
    assert NEEDLE not in caplog.text
