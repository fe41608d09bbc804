"""gunicorn with deploy/gunicorn.conf.py serving registry.wsgi:app, as in production (real processes)."""
from __future__ import annotations

import pytest
import requests
from alembic.script import ScriptDirectory

from tests import pg
from tests.server import ADMIN_HEADERS, CLOSE, ROOT, running_server, server_process

pytestmark = pytest.mark.slow

# As deployed: authentication on; writes use the REGISTRY_ADMIN_TOKEN the helper configures (ADMIN_HEADERS).
PRODUCTION = {"REGISTRY_AUTH": "enabled"}


@pytest.fixture(scope="module")
def migrated_server(admin_url, template_database):
    """One gunicorn shared by the checks that do not stop it, on its own migrated database."""
    name = pg.create_database(admin_url, template=template_database)
    try:
        with running_server(pg.with_database(admin_url, name), extra_env=PRODUCTION) as url:
            yield url
    finally:
        pg.drop_database(admin_url, name)


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_gunicorn_answers_probe_with_200_on_a_migrated_database(migrated_server, path):
    response = requests.get(migrated_server + path, headers=CLOSE, timeout=10)

    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_gunicorn_serves_the_native_api(migrated_server):
    models = migrated_server + "/api/v1/models"
    created = requests.post(models, json={"name": "served-by-gunicorn"}, headers=ADMIN_HEADERS, timeout=10)
    fetched = requests.get(models + "/served-by-gunicorn", headers=ADMIN_HEADERS, timeout=10)

    assert created.status_code == 201
    assert fetched.json()["name"] == "served-by-gunicorn"


def test_gunicorn_refuses_writes_without_a_token(migrated_server):
    response = requests.post(migrated_server + "/api/v1/models", json={"name": "anonymous"}, headers=CLOSE, timeout=10)

    assert response.status_code == 401


def test_readyz_is_503_naming_migrations_when_database_is_empty(empty_database_url):
    with server_process(empty_database_url, extra_env=PRODUCTION, wait_for="/healthz") as server:
        response = requests.get(server.url + "/readyz", headers=CLOSE, timeout=10)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == "migrations not at head"
    assert body["database"] == []
    assert body["expected"] == sorted(ScriptDirectory(str(ROOT / "migrations")).get_heads())


def test_healthz_stays_200_while_migrations_are_missing(empty_database_url):
    # Liveness must not fail for a missing migration, or Kubernetes would restart pods in a loop.
    with server_process(empty_database_url, extra_env=PRODUCTION, wait_for="/healthz") as server:
        response = requests.get(server.url + "/healthz", headers=CLOSE, timeout=10)

    assert response.status_code == 200


def test_sigterm_stops_gunicorn_with_exit_code_0(fresh_database_url):
    with server_process(fresh_database_url, extra_env=PRODUCTION) as server:
        code = server.stop()

        assert code == 0
        assert "Shutting down: Master" in server.output()
