"""A serving read that misses the cache costs one round trip (``db/prepared.py``): on a pooled connection in
autocommit (no BEGIN before it, no ROLLBACK after), its statement PREPAREd once per connection and then only
EXECUTEd; sent whole behind a transaction pooler; and the connection goes back to the pool transactional. A real
pool here, not the tests' outer transaction, which such a read joins instead. Statements are recorded by the
cursors of the app's own connections (every statement psycopg2 sends goes through one)."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import psycopg2
import pytest
from sqlalchemy import event

from registry import create_app
from registry.extensions import CACHES_KEY, db
from tests.api.support import sent_statements

TIMEOUT = 30.0

READS = [
    "/api/v1/models/fraud/stages/Production",
    "/api/v1/models/fraud/aliases/champion",
    "/api/2.0/mlflow/registered-models/get-latest-versions?name=fraud&stages=Production",
    "/api/2.0/mlflow/registered-models/alias?name=fraud&alias=champion",
]


def make_app(database_url: str, **settings):
    application = create_app({"database_url": database_url, "auth_enabled": False, **settings})
    client = application.test_client()
    assert client.post("/api/v1/models", json={"name": "fraud"}).status_code == 201
    assert client.post("/api/v1/models/fraud/versions", json={"source": "s3://b/m"}).status_code == 201
    assert client.post("/api/v1/models/fraud/versions/1/transition", json={"stage": "Production"}).status_code == 200
    assert client.put("/api/v1/models/fraud/aliases/champion", json={"version": 1}).status_code == 200
    return application


@pytest.fixture
def app(fresh_database_url):
    application = make_app(fresh_database_url)
    yield application
    with application.app_context():
        db.engine.dispose()


@contextmanager
def statements(application):
    """(first word, autocommit) of every statement the app's connections send meanwhile."""
    with sent_statements(application) as sent:
        seen: list[tuple[str, bool]] = []
        yield seen
    seen.extend((text.split()[0].upper(), autocommit) for text, autocommit in sent)


def miss(application, path: str):
    application.extensions[CACHES_KEY].hub.dispatch(None)  # forget every cached answer: this read misses
    response = application.test_client().get(path)
    assert response.status_code == 200, response.text
    return response


def assert_back_transactional(application) -> None:
    with application.app_context():
        with db.engine.connect() as connection:
            assert connection.connection.dbapi_connection.autocommit is False


@pytest.mark.parametrize("path", READS)
def test_a_missed_serving_read_is_one_statement_in_autocommit(app, path):
    with statements(app) as first:
        expected = miss(app, path).get_json()
    # The first read on a connection prepares its statement there, in autocommit like the read itself.
    assert first == [("PREPARE", True), ("EXECUTE", True)]
    with statements(app) as seen:
        assert miss(app, path).get_json() == expected
    # From then on: one EXECUTE, one round trip, no BEGIN before it and no ROLLBACK after.
    assert seen == [("EXECUTE", True)]
    assert_back_transactional(app)


def test_behind_a_transaction_pooler_the_statement_is_sent_whole(fresh_database_url):
    # Two statements may reach two server connections through PgBouncer in transaction mode: nothing is prepared.
    application = make_app(fresh_database_url, transaction_pooler=True)
    try:
        for path in READS:
            with statements(application) as seen:
                miss(application, path)
            assert seen == [("SELECT", True)]
        assert_back_transactional(application)
    finally:
        with application.app_context():
            db.engine.dispose()


def test_a_connection_pinged_after_sitting_idle_still_serves_in_autocommit(fresh_database_url):
    # The pool pings a connection that sat idle (here: always) inside a transaction psycopg2 opens for it; the
    # ping must end it, or the switch to autocommit is refused ("set_session cannot be used inside a transaction").
    application = make_app(fresh_database_url, db_ping_after_seconds=0)
    try:
        for path in READS:
            miss(application, path)
            miss(application, path)
        assert_back_transactional(application)
    finally:
        with application.app_context():
            db.engine.dispose()


def test_a_connection_the_database_dropped_is_replaced_and_the_read_answered(app):
    path = READS[0]
    expected = miss(app, path).get_json()
    # Every pooled connection is terminated, as a server restart drops them: the next read meets a dead one.
    with psycopg2.connect(app.config["SQLALCHEMY_DATABASE_URI"].replace("+psycopg2", "")) as admin:
        admin.autocommit = True
        with admin.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                           " WHERE datname = current_database() AND application_name = 'registry'")
            assert cursor.fetchone()[0] >= 1
    assert miss(app, path).get_json() == expected
    assert miss(app, READS[2]).status_code == 200


def test_a_write_after_serving_reads_on_the_same_connections_is_still_one_transaction(app):
    for path in READS:
        miss(app, path)
    with statements(app) as seen:
        response = app.test_client().post("/api/v1/models/fraud/versions", json={"source": "s3://b/m2"})
    assert response.status_code == 201, response.text
    assert seen and all(autocommit is False for _, autocommit in seen), seen


def test_a_busy_worker_keeps_its_connections_instead_of_opening_new_ones(fresh_database_url):
    """Concurrent misses beyond the pool wait for a pooled connection; none is opened and closed per burst.
    With overflow, SQLAlchemy closed each extra connection as it came back, so every burst of misses opened new
    PostgreSQL backends again (58 a second at 32 cold readers under gevent). Never more than the pool size."""
    application = make_app(fresh_database_url, pool_size=2)
    opened = []
    with application.app_context():
        engine = db.engine
    event.listen(engine, "connect", lambda *_args: opened.append(1))
    try:
        for _ in range(3):
            application.extensions[CACHES_KEY].hub.dispatch(None)
            start = threading.Barrier(16)

            def read() -> int:
                start.wait(TIMEOUT)
                return application.test_client().get(READS[0]).status_code

            with ThreadPoolExecutor(16) as pool:
                assert list(pool.map(lambda _: read(), range(16))) == [200] * 16
        assert len(opened) <= 2
    finally:
        with application.app_context():
            db.engine.dispose()
