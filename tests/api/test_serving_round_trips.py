"""A serving read that misses the cache costs one round trip: its one statement in autocommit, no BEGIN before it
and no ROLLBACK after (``db/unit_of_work.one_statement_read``). A real pool here, not the tests' outer
transaction, which such a read joins instead."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
from sqlalchemy import event

from registry import create_app
from registry.extensions import CACHES_KEY, db

READS = [
    "/api/v1/models/fraud/stages/Production",
    "/api/v1/models/fraud/aliases/champion",
    "/api/2.0/mlflow/registered-models/get-latest-versions?name=fraud&stages=Production",
    "/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion",
]


@pytest.fixture
def app(fresh_database_url):
    application = create_app({"database_url": fresh_database_url, "auth_enabled": False})
    client = application.test_client()
    assert client.post("/api/v1/models", json={"name": "fraud"}).status_code == 201
    assert client.post("/api/v1/models/fraud/versions", json={"source": "s3://b/m"}).status_code == 201
    assert client.post("/api/v1/models/fraud/versions/1/transition", json={"stage": "Production"}).status_code == 200
    assert client.put("/api/v1/models/fraud/aliases/champion", json={"version": 1}).status_code == 200
    yield application
    with application.app_context():
        db.engine.dispose()


@contextmanager
def statements(application):
    """(first word, autocommit, transaction status) of every statement the app's engine runs meanwhile."""
    seen = []
    with application.app_context():
        engine = db.engine

    def note(conn, cursor, statement, parameters, context, executemany):
        raw = cursor.connection
        seen.append((statement.split()[0].upper(), raw.autocommit))

    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


@pytest.mark.parametrize("path", READS)
def test_a_missed_serving_read_is_one_statement_in_autocommit(app, path):
    client = app.test_client()
    app.extensions[CACHES_KEY].hub.dispatch(None)  # forget every cached answer: this read misses
    with statements(app) as seen:
        response = client.get(path)
    assert response.status_code == 200, response.text
    # One SELECT, sent in autocommit: psycopg2 sends no BEGIN before it, and the read's end no ROLLBACK.
    assert seen == [("SELECT", True)]
    # The connection went back to the pool transactional again: the next write on it is one transaction.
    with app.app_context():
        with db.engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False


def test_a_write_after_serving_reads_on_the_same_connections_is_still_one_transaction(app):
    client = app.test_client()
    app.extensions[CACHES_KEY].hub.dispatch(None)
    for path in READS:
        assert client.get(path).status_code == 200
    with statements(app) as seen:
        response = client.post("/api/v1/models/fraud/versions", json={"source": "s3://b/m2"})
    assert response.status_code == 201, response.text
    assert seen and all(autocommit is False for _, autocommit in seen), seen
