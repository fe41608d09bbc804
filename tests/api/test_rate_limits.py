"""Rate limits per token and per address on writes and on searches: a 429 with Retry-After in the dialect's
shape, answered before the view runs, so a refused write wrote nothing (the MLflow client sends a create again
after a 429: it must never follow a committed write)."""
from __future__ import annotations

import pytest

from registry import create_app
from registry.auth import SYSTEM
from registry.config import ConfigError, Settings
from registry.extensions import CACHES_KEY, db

from .support import assert_error

LIMITS = {"rate_limit_token_writes": "3/minute", "rate_limit_token_searches": "2/minute",
          "rate_limit_address_writes": "5/minute", "rate_limit_address_searches": "100/minute"}


@pytest.fixture
def limited_app(fresh_database_url):
    from registry.services import identities

    application = create_app({"database_url": fresh_database_url, "auth_enabled": True, **LIMITS})
    application.config["TESTING"] = True
    with application.app_context():
        tokens = {name: identities.create_token(SYSTEM, name, create_user=True, admin=True)[1]
                  for name in ("ann", "ben")}
    application.tokens = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


def _create(client, headers, name: str):
    return client.post("/api/v1/models", json={"name": name}, headers=headers)


def _retry_after(response) -> int:
    assert response.headers["Retry-After"].isdigit(), dict(response.headers)
    return int(response.headers["Retry-After"])


def test_a_token_over_its_write_limit_gets_429_and_nothing_is_written(limited_app):
    client, ann = limited_app.test_client(), limited_app.tokens["ann"]
    assert [_create(client, ann, f"m{i}").status_code for i in range(3)] == [201, 201, 201]

    refused = _create(client, ann, "m3")

    error = assert_error(refused, 429, "RATE_LIMITED")
    assert 1 <= _retry_after(refused) <= 60
    assert "token" in error["message"]
    assert client.get("/api/v1/models/m3", headers=ann).status_code == 404
    # Reads are not writes: the token may still read.
    assert client.get("/api/v1/models/m0", headers=ann).status_code == 200


def test_the_mlflow_and_databricks_dialects_answer_request_limit_exceeded(limited_app):
    client, ann = limited_app.test_client(), limited_app.tokens["ann"]
    for i in range(3):
        assert _create(client, ann, f"m{i}").status_code == 201
    for path, body in [("/api/2.0/mlflow/registered-models/create", {"name": "x"}),
                       ("/api/2.0/mlflow/transition-requests/create", {"name": "m0", "version": "1",
                                                                        "stage": "Staging"})]:
        refused = client.post(path, json=body, headers=ann)
        assert refused.status_code == 429
        assert refused.get_json() == {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": refused.get_json()["message"]}
        assert _retry_after(refused) >= 1


def test_an_address_over_its_write_limit_is_refused_whatever_the_token(limited_app):
    client = limited_app.test_client()
    ann, ben = limited_app.tokens["ann"], limited_app.tokens["ben"]
    assert [_create(client, ann, f"a{i}").status_code for i in range(3)] == [201] * 3
    assert [_create(client, ben, f"b{i}").status_code for i in range(2)] == [201] * 2

    refused = _create(client, ben, "b2")

    assert "address" in assert_error(refused, 429, "RATE_LIMITED")["message"]
    # Another address is not affected.
    other = client.post("/api/v1/models", json={"name": "b3"}, headers=ben,
                        environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 201


def test_searches_have_their_own_limit_and_plain_reads_none(limited_app):
    client, ann = limited_app.test_client(), limited_app.tokens["ann"]
    assert _create(client, ann, "m0").status_code == 201
    searches = ["/api/v1/models", "/api/2.0/mlflow/registered-models/search"]
    assert [client.get(path, headers=ann).status_code for path in searches] == [200, 200]

    assert_error(client.get("/api/v1/versions", headers=ann), 429, "RATE_LIMITED")
    assert client.get("/api/2.0/mlflow/model-versions/search", headers=ann).status_code == 429
    assert client.get("/api/v1/models/m0", headers=ann).status_code == 200
    assert client.get("/api/2.0/mlflow/registered-models/get?name=m0", headers=ann).status_code == 200
    assert _create(client, ann, "m1").status_code == 201  # writes are counted apart from searches


@pytest.mark.parametrize("value", ["lots", "5/fortnight", "-1/second"])
def test_a_limit_that_does_not_parse_fails_at_start_up(value):
    with pytest.raises(ConfigError, match="REGISTRY_RATE_LIMIT_TOKEN_WRITES"):
        Settings.from_env({"REGISTRY_RATE_LIMIT_TOKEN_WRITES": value})


def test_off_turns_a_limit_off():
    assert Settings.from_env({"REGISTRY_RATE_LIMIT_TOKEN_WRITES": "off"}).rate_limit_token_writes == ""
