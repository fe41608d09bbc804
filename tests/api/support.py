"""Helpers shared by the API tests: check the one error shape, walk paginated listings, record what is sent."""
from __future__ import annotations

import time
from contextlib import contextmanager

import psycopg2.extensions
from sqlalchemy import event

from registry.extensions import CACHES_KEY, db


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The one native error shape, with the given status (and code)."""
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    if code is not None:
        assert error["code"] == code
    return error


def walk(client, path: str, key: str, **params) -> list[list[dict]]:
    """Every page of a paginated listing (items under ``key``), following next_page_token until it is null."""
    pages, token = [], None
    while True:
        query = dict(params, **({"page_token": token} if token else {}))
        response = client.get(path, query_string=query)
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        pages.append(body[key])
        token = body["next_page_token"]
        if token is None:
            return pages


def listening(app) -> None:
    """Answers are cached only while the change listener is connected: wait until it is (bounded so that a
    listener that never connects fails the test rather than hanging it)."""
    hub = app.extensions[CACHES_KEY].hub
    hub.ensure_listening()
    deadline = time.monotonic() + 30
    while not hub.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.healthy


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    """Prometheus text -> {(sample name, sorted label pairs): value}."""
    from prometheus_client.parser import text_string_to_metric_families

    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@contextmanager
def sent_statements(app):
    """(statement text, autocommit) of everything the app's pooled connections send PostgreSQL while the block
    runs, recorded by their cursors: the serving reads run on raw pooled connections (``db/prepared.py``), where
    SQLAlchemy's statement events do not see them."""
    seen: list[tuple[str, bool]] = []

    class Recording(psycopg2.extensions.cursor):
        def execute(self, query, vars=None):
            seen.append((query.decode() if isinstance(query, bytes) else query, self.connection.autocommit))
            return super().execute(query, vars)

    def record(dbapi_connection, _record, _proxy):
        dbapi_connection.cursor_factory = Recording

    with app.app_context():
        engine = db.engine
    event.listen(engine, "checkout", record)
    try:
        yield seen
    finally:
        event.remove(engine, "checkout", record)
