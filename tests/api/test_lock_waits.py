"""A model whose row another transaction holds (a migration, a stuck session): its writers are answered 503 with
Retry-After after ``lock_timeout`` and write nothing, while writers of other models keep completing."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import psycopg2
import pytest

from registry import create_app
from registry.extensions import CACHES_KEY, db

from .support import assert_error

ADMIN = {"X-Registry-Actor": "alice"}


@pytest.fixture
def app_with_short_lock_timeout(fresh_database_url):
    application = create_app({"database_url": fresh_database_url, "auth_enabled": False, "lock_timeout_ms": 200})
    application.config["TESTING"] = True
    client = application.test_client()
    for name in ("held", "free"):
        assert client.post("/api/v1/models", json={"name": name}, headers=ADMIN).status_code == 201
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def held_model(fresh_database_url, app_with_short_lock_timeout):
    """Another session holds the row lock of model "held" until the test ends (as a stuck transaction would)."""
    with closing(psycopg2.connect(fresh_database_url)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM registered_models WHERE name = 'held' FOR UPDATE")
        yield
        connection.rollback()


def test_writers_of_a_locked_model_get_503_while_other_models_keep_being_written(app_with_short_lock_timeout,
                                                                                 held_model):
    app = app_with_short_lock_timeout

    def write(model: str, n: int):
        client = app.test_client()
        if model == "held":
            return [client.post("/api/v1/models/held/versions", json={"source": f"s3://b/{n}"}, headers=ADMIN),
                    client.post("/api/2.0/mlflow/model-versions/create", json={"name": "held", "source": "s3://b/x"},
                                headers=ADMIN)]
        return [client.post("/api/v1/models/free/versions", json={"source": f"s3://b/{n}.{i}"}, headers=ADMIN)
                for i in range(5)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        held = [pool.submit(write, "held", n) for n in range(4)]
        free = [pool.submit(write, "free", n) for n in range(4)]
        free_answers = [r for f in free for r in f.result()]
        held_answers = [r for f in held for r in f.result()]

    assert [r.status_code for r in free_answers] == [201] * 20
    assert sorted(r.get_json()["version"] for r in free_answers) == list(range(1, 21))
    for response in held_answers:
        assert response.status_code == 503, response.get_data(as_text=True)
        assert int(response.headers["Retry-After"]) >= 1
        if response.request.path.startswith("/api/v1"):
            assert_error(response, 503, "UNAVAILABLE")
        else:
            assert response.get_json()["error_code"] == "TEMPORARILY_UNAVAILABLE"
    # Nothing was written for the locked model: no version, no number taken.
    listed = app.test_client().get("/api/v1/models/held/versions", headers=ADMIN).get_json()
    assert listed["versions"] == []


def test_a_write_succeeds_once_the_lock_is_released(app_with_short_lock_timeout, fresh_database_url):
    client = app_with_short_lock_timeout.test_client()
    with closing(psycopg2.connect(fresh_database_url)) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM registered_models WHERE name = 'held' FOR UPDATE")
        refused = client.post("/api/v1/models/held/versions", json={"source": "s3://b/1"}, headers=ADMIN)
        connection.rollback()
    accepted = client.post("/api/v1/models/held/versions", json={"source": "s3://b/1"}, headers=ADMIN)
    assert refused.status_code == 503
    assert accepted.status_code == 201 and accepted.get_json()["version"] == 1
