"""/healthz answers whenever the process does; /readyz only when the database is reachable and migrated."""
from __future__ import annotations

import socket

import pytest
from alembic.script import ScriptDirectory

from registry import MIGRATIONS_DIR, create_app
from registry.extensions import db
from tests import pg


def migration_heads() -> list[str]:
    return sorted(ScriptDirectory(str(MIGRATIONS_DIR)).get_heads())


def test_healthz_is_200_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_with_the_migration_head(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "migration": migration_heads()}


@pytest.fixture
def unmigrated_database_url(admin_url):
    name = pg.create_database(admin_url, prefix="registry_unmigrated")
    yield pg.with_database(admin_url, name)
    pg.drop_database(admin_url, name)


def _serve_once(database_url: str, path: str):
    app = create_app({"database_url": database_url})
    try:
        return app.test_client().get(path)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_readyz_is_503_when_migrations_are_not_at_head(unmigrated_database_url):
    response = _serve_once(unmigrated_database_url, "/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable" and body["reason"] == "migrations not at head"
    assert (body["database"], body["expected"]) == ([], migration_heads())


@pytest.fixture
def unreachable_database_url():
    """A port nothing listens on: bind a socket to get a free one, then close it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/registry"


def test_readyz_is_503_when_the_database_is_unreachable(unreachable_database_url):
    response = _serve_once(unreachable_database_url, "/readyz")
    assert response.status_code == 503
    assert response.get_json()["reason"].startswith("database unreachable")


def test_healthz_is_200_even_when_the_database_is_unreachable(unreachable_database_url):
    assert _serve_once(unreachable_database_url, "/healthz").status_code == 200


def test_readyz_stays_ready_when_the_schema_is_newer_than_the_code(app, admin_url):
    """Rolling update: the migration Job ran a newer revision; old pods must keep serving."""
    import psycopg2

    from registry import create_app
    from registry.extensions import db
    from tests import pg
    from tests.conftest import migrate_database

    name = pg.create_database(admin_url, prefix="registry_ahead")
    url = pg.with_database(admin_url, name)
    try:
        migrate_database(url)
        connection = psycopg2.connect(url)
        with connection, connection.cursor() as cursor:
            cursor.execute("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
        connection.close()
        ahead = create_app({"database_url": url, "auth_enabled": False})
        response = ahead.test_client().get("/readyz")
        assert response.status_code == 200
        assert response.get_json()["migration"] == ["ffff_from_the_future"]
        with ahead.app_context():
            db.engine.dispose()
    finally:
        pg.drop_database(admin_url, name)
