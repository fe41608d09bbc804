"""Pooled connections are checked before use only after sitting idle (registry/pooling.py)."""
from __future__ import annotations

import psycopg2
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from registry import create_app
from registry.extensions import db


def _read(app) -> int:
    with app.app_context():
        try:
            return db.session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        finally:
            db.session.remove()


def _kill_pooled_connections(admin_url: str, backend_pid: int) -> None:
    connection = psycopg2.connect(admin_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
            assert cursor.fetchone()[0] is True
    finally:
        connection.close()


@pytest.fixture
def make_app(fresh_database_url):
    apps = []

    def make(ping_after: int):
        app = create_app({"database_url": fresh_database_url, "db_ping_after_seconds": ping_after, "pool_size": 1})
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()


def test_an_idle_connection_that_died_is_replaced_before_use(make_app, admin_url):
    app = make_app(ping_after=0)  # every connection counts as idle: always checked
    first = _read(app)
    _kill_pooled_connections(admin_url, first)
    second = _read(app)  # no error: the check found the dead connection and the pool opened another
    assert second != first


def test_a_recently_used_connection_is_not_checked(make_app, admin_url):
    # The cost of skipping the check: a connection that died within the idle window fails its next statement
    # (as it would without any check), is discarded, and the one after it works.
    app = make_app(ping_after=3600)
    first = _read(app)
    _kill_pooled_connections(admin_url, first)
    with pytest.raises(OperationalError):
        _read(app)
    assert _read(app) != first
