"""Failed password sign-ins (HTTP Basic ``user:password``) are limited per address and per user name, answered 429
with Retry-After in the dialect's shape before the slow hash is computed (api/rate_limits.py, checked_sign_in).
Whether the hash ran is counted, not timed: every password check goes through ``check_password_hash``."""
from __future__ import annotations

import base64

import pytest

from registry import create_app
from registry.auth import SYSTEM
from registry.config import ConfigError, Settings
from registry.extensions import CACHES_KEY, db
from registry.services import identities

from .support import assert_error, listening

PASSWORD = "correct horse battery"
WRONG = "not the password at all"
ADDRESS_LIMIT, USER_LIMIT = 3, 5
LIMITS = {"rate_limit_address_sign_ins": f"{ADDRESS_LIMIT}/minute", "rate_limit_user_sign_ins": f"{USER_LIMIT}/minute"}
ME = "/api/v1/me"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def at(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


@pytest.fixture
def limited_app(fresh_database_url):
    application = create_app({"database_url": fresh_database_url, "auth_enabled": True, **LIMITS})
    application.config["TESTING"] = True
    with application.app_context():
        for name in ("mia", "noa"):
            identities.create_user(SYSTEM, name, password=PASSWORD)
    yield application
    application.extensions[CACHES_KEY].hub.close()
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def hashes(monkeypatch):
    """How many password hashes were checked."""
    calls = []
    real = identities.check_password_hash

    def counting(stored, password):
        calls.append(password)
        return real(stored, password)

    monkeypatch.setattr(identities, "check_password_hash", counting)
    return calls


def forget_sign_ins(app) -> None:
    """As when a password changes anywhere: every remembered sign-in is dropped, the next one is checked."""
    app.extensions[CACHES_KEY].hub.dispatch({"tokens": 1})


def test_wrong_passwords_from_one_address_beyond_the_limit_get_429_without_hashing(limited_app, hashes):
    client = limited_app.test_client()
    assert [client.get(ME, headers=basic("mia", WRONG)).status_code for _ in range(ADDRESS_LIMIT)] == [401] * 3
    assert len(hashes) == ADDRESS_LIMIT

    refused = client.get(ME, headers=basic("mia", WRONG))
    right_password = client.get(ME, headers=basic("mia", PASSWORD))  # cannot be told right without hashing
    other_user = client.get(ME, headers=basic("noa", PASSWORD))

    error = assert_error(refused, 429, "RATE_LIMITED")
    assert "address" in error["message"] and 1 <= int(refused.headers["Retry-After"]) <= 60
    for response in (right_password, other_user):
        assert_error(response, 429, "RATE_LIMITED")
    assert len(hashes) == ADDRESS_LIMIT  # none of the refused ones was hashed
    # Another address signs in with the right password, hashed once.
    elsewhere = client.get(ME, headers=basic("mia", PASSWORD), **at("10.1.2.3"))
    assert elsewhere.status_code == 200 and elsewhere.get_json()["name"] == "mia"
    assert len(hashes) == ADDRESS_LIMIT + 1


def test_wrong_passwords_for_one_user_from_many_addresses_beyond_the_limit_get_429(limited_app, hashes):
    client = limited_app.test_client()
    statuses = [client.get(ME, headers=basic("mia", WRONG), **at(f"10.0.0.{i}")).status_code
                for i in range(USER_LIMIT)]
    assert statuses == [401] * USER_LIMIT

    refused = client.get(ME, headers=basic("mia", WRONG), **at("10.0.1.1"))

    assert "user name" in assert_error(refused, 429, "RATE_LIMITED")["message"]
    assert len(hashes) == USER_LIMIT
    # Another user from a fresh address is not affected.
    assert client.get(ME, headers=basic("noa", PASSWORD), **at("10.0.1.2")).status_code == 200


def test_the_mlflow_dialect_answers_request_limit_exceeded(limited_app, hashes):
    client = limited_app.test_client()
    path = "/api/2.0/mlflow/users/get?username=mia"
    for _ in range(ADDRESS_LIMIT):
        assert client.get(path, headers=basic("mia", WRONG)).status_code == 401

    refused = client.get(path, headers=basic("mia", WRONG))

    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    body = refused.get_json()
    assert body == {"error_code": "REQUEST_LIMIT_EXCEEDED", "message": body["message"]}
    assert len(hashes) == ADDRESS_LIMIT


def test_successful_sign_ins_are_not_counted(limited_app, hashes):
    client = limited_app.test_client()
    for _ in range(ADDRESS_LIMIT + 2):
        forget_sign_ins(limited_app)
        assert client.get(ME, headers=basic("mia", PASSWORD)).status_code == 200
    assert len(hashes) == ADDRESS_LIMIT + 2  # each one was checked, none was refused
    # The failures still have their whole allowance.
    assert [client.get(ME, headers=basic("mia", WRONG)).status_code for _ in range(ADDRESS_LIMIT)] == [401] * 3
    assert client.get(ME, headers=basic("mia", WRONG)).status_code == 429


def test_a_verified_sign_in_is_remembered_and_outlives_a_guessers_limit(limited_app, hashes):
    """A client sending Basic user:password on every request pays the hash once per process; someone guessing
    that user's password, who brings the user name over its limit, does not stop it."""
    listening(limited_app)
    client = limited_app.test_client()
    for _ in range(3):
        assert client.get(ME, headers=basic("mia", PASSWORD)).status_code == 200
    assert len(hashes) == 1
    for i in range(USER_LIMIT + 1):
        client.get(ME, headers=basic("mia", WRONG), **at(f"10.0.2.{i}"))
    assert client.get(ME, headers=basic("mia", WRONG), **at("10.0.3.1")).status_code == 429

    assert client.get(ME, headers=basic("mia", PASSWORD)).status_code == 200
    assert len(hashes) == 1 + USER_LIMIT


def test_tokens_sent_as_basic_passwords_are_not_password_checks(limited_app, hashes):
    with limited_app.app_context():
        _, token = identities.create_token(SYSTEM, "tia", create_user=True)
    client = limited_app.test_client()
    for _ in range(ADDRESS_LIMIT + 2):
        forget_sign_ins(limited_app)
        assert client.get(ME, headers=basic("tia", token)).status_code == 200
    assert hashes == []


@pytest.mark.parametrize("name", ["REGISTRY_RATE_LIMIT_ADDRESS_SIGN_INS", "REGISTRY_RATE_LIMIT_USER_SIGN_INS"])
def test_the_limits_are_configurable(name):
    field = name.removeprefix("REGISTRY_").lower()
    assert getattr(Settings.from_env({name: "2/second;7/hour"}), field) == "2/second;7/hour"
    assert getattr(Settings.from_env({name: "off"}), field) == ""
    assert getattr(Settings.from_env({}), field) == "10/minute;100/hour"
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: "lots"})


def test_off_turns_the_sign_in_limits_off(fresh_database_url, hashes):
    application = create_app({"database_url": fresh_database_url, "auth_enabled": True,
                              "rate_limit_address_sign_ins": "", "rate_limit_user_sign_ins": ""})
    application.config["TESTING"] = True
    try:
        with application.app_context():
            identities.create_user(SYSTEM, "mia", password=PASSWORD)
        client = application.test_client()
        assert [client.get(ME, headers=basic("mia", WRONG)).status_code for _ in range(12)] == [401] * 12
    finally:
        application.extensions[CACHES_KEY].hub.close()
        with application.app_context():
            db.engine.dispose()
