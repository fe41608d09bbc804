"""``Idempotency-Key`` on native creates (DESIGN §5): a create sent again with the same key (a retry after a lost
answer) creates nothing more and answers the resource it created the first time; the same key with another
request is a 409; a create that failed leaves the key unused."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from registry import create_app
from registry.extensions import CACHES_KEY, db
from tests.api.support import assert_error
from tests.services.support import events

ADMIN = {"X-Registry-Actor": "alice"}


def keyed(key: str, actor: str = "alice") -> dict:
    return {"X-Registry-Actor": actor, "Idempotency-Key": key}


def test_a_model_create_retried_with_its_key_creates_once_and_answers_the_same(client):
    first = client.post("/api/v1/models", json={"name": "churn", "description": "d"}, headers=keyed("k-1"))
    again = client.post("/api/v1/models", json={"name": "churn", "description": "d"}, headers=keyed("k-1"))

    assert first.status_code == 201 and again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert [e.action for e in events(model_name="churn")] == ["model.created"]


def test_a_version_create_retried_with_its_key_takes_one_number(client):
    assert client.post("/api/v1/models", json={"name": "churn"}, headers=ADMIN).status_code == 201
    answers = [client.post("/api/v1/models/churn/versions", json={"source": "s3://b/1"}, headers=keyed("v-1"))
               for _ in range(3)]
    later = client.post("/api/v1/models/churn/versions", json={"source": "s3://b/2"}, headers=keyed("v-2"))

    assert [a.status_code for a in answers] == [201, 201, 201]
    assert {a.get_json()["version"] for a in answers} == {1}
    assert later.get_json()["version"] == 2
    listed = client.get("/api/v1/models/churn/versions", headers=ADMIN).get_json()["versions"]
    assert sorted(v["version"] for v in listed) == [1, 2]


def test_the_same_key_with_another_request_is_a_conflict(client):
    assert client.post("/api/v1/models", json={"name": "churn"}, headers=keyed("k")).status_code == 201

    other_body = client.post("/api/v1/models", json={"name": "fraud"}, headers=keyed("k"))
    assert client.post("/api/v1/models", json={"name": "fraud"}, headers=ADMIN).status_code == 201
    other_route = client.post("/api/v1/models/fraud/versions", json={"source": "s3://b/1"}, headers=keyed("k"))

    for response in (other_body, other_route):
        error = assert_error(response, 409, "IDEMPOTENCY_KEY_REUSED")
        assert "Idempotency-Key" in error["message"]
    assert client.get("/api/v1/models/fraud/versions", headers=ADMIN).get_json()["versions"] == []


def test_keys_belong_to_their_caller(client):
    assert client.post("/api/v1/models", json={"name": "a"}, headers=keyed("k", "alice")).status_code == 201
    bob = client.post("/api/v1/models", json={"name": "b"}, headers=keyed("k", "bob"))
    assert bob.status_code == 201 and bob.get_json()["name"] == "b"


def test_a_failed_create_does_not_use_up_its_key(client):
    refused = client.post("/api/v1/models/nowhere/versions", json={"source": "s3://b/1"}, headers=keyed("k"))
    assert client.post("/api/v1/models", json={"name": "nowhere"}, headers=ADMIN).status_code == 201
    accepted = client.post("/api/v1/models/nowhere/versions", json={"source": "s3://b/1"}, headers=keyed("k"))
    assert refused.status_code == 404 and accepted.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\u00e9"])
def test_a_malformed_key_is_a_400(client, key):
    response = client.post("/api/v1/models", json={"name": "churn"}, headers=keyed(key))
    assert_error(response, 400, "INVALID_ARGUMENT")


@pytest.fixture
def committing_app(fresh_database_url):
    application = create_app({"database_url": fresh_database_url, "auth_enabled": False})
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


def test_concurrent_retries_with_one_key_create_once(committing_app):
    assert committing_app.test_client().post("/api/v1/models", json={"name": "churn"},
                                             headers=ADMIN).status_code == 201

    def send(_):
        return committing_app.test_client().post("/api/v1/models/churn/versions", json={"source": "s3://b/1"},
                                                 headers=keyed("same"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(send, range(8)))

    assert [a.status_code for a in answers] == [201] * 8
    assert {a.get_json()["version"] for a in answers} == {1}
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
