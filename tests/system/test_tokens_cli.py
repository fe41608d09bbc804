"""`registry tokens create|list|revoke` through the real console script, and the bootstrap admin token that a
fresh `registry serve` prints once."""
from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from registry import create_app
from registry.auth import SYSTEM, Actor
from registry.errors import Unauthenticated
from registry.extensions import db
from registry.services import identities
from tests.server import cli_env, server_process

REGISTRY = Path(sys.executable).parent / "registry"
TOKEN = re.compile(r"reg_[A-Za-z0-9_-]{20,}")


def authenticate(token: str) -> Actor:
    """The principal a token belongs to (the service answers its expiry too)."""
    return identities.authenticate_with_expiry(token)[0]


def registry(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(REGISTRY), *args], env=cli_env(url), capture_output=True, text=True, timeout=120)


def create(url: str, *args: str) -> str:
    result = registry(url, "tokens", "create", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def service(fresh_database_url):
    """Calls services on the same database as the command line, from this process."""
    app = create_app({"database_url": fresh_database_url})

    def call(fn, *args, **kwargs):
        with app.app_context():
            return fn(*args, **kwargs)

    yield call
    with app.app_context():
        db.engine.dispose()


def test_create_prints_exactly_one_line_that_is_the_token(fresh_database_url, service):
    stdout = create(fresh_database_url, "--user", "ci", "--expires-in", "30d")
    lines = stdout.splitlines()
    assert len(lines) == 1 and stdout == lines[0] + "\n"
    assert TOKEN.fullmatch(lines[0])
    assert service(authenticate, lines[0]) == Actor("ci", is_admin=False)


def test_create_with_expiry_sets_it(fresh_database_url, service):
    create(fresh_database_url, "--user", "ci", "--expires-in", "12h")
    [record] = service(identities.list_tokens, SYSTEM, "ci")
    assert record.expires_at - record.created_at == timedelta(hours=12)


def test_create_with_admin_flag_makes_an_admin(fresh_database_url, service):
    token = create(fresh_database_url, "--user", "ops", "--admin").strip()
    assert service(authenticate, token) == Actor("ops", is_admin=True)


def test_create_for_an_existing_user_adds_a_token(fresh_database_url, service):
    first = create(fresh_database_url, "--user", "ci").strip()
    second = create(fresh_database_url, "--user", "ci", "--description", "second").strip()
    assert first != second
    assert service(authenticate, first) == service(authenticate, second) == Actor("ci")


@pytest.mark.parametrize("expires_in", ["30", "30x", "tomorrow", "-1d", "0d", "1y", "5000d"])
def test_create_with_bad_expiry_fails_without_a_token(fresh_database_url, service, expires_in):
    result = registry(fresh_database_url, "tokens", "create", "--user", "ci", "--expires-in", expires_in)
    assert result.returncode != 0
    assert not TOKEN.search(result.stdout + result.stderr)
    assert service(identities.list_tokens, SYSTEM) == []


def test_create_with_admin_flag_refuses_an_existing_non_admin(fresh_database_url, service):
    create(fresh_database_url, "--user", "ci")
    result = registry(fresh_database_url, "tokens", "create", "--user", "ci", "--admin")
    assert result.returncode != 0
    assert result.stdout == ""
    assert len(service(identities.list_tokens, SYSTEM)) == 1


def test_list_shows_every_token_but_never_a_secret(fresh_database_url, service):
    tokens = [create(fresh_database_url, "--user", user).strip() for user in ("ci", "ops", "ci")]
    result = registry(fresh_database_url, "tokens", "list")
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    for token in tokens:
        assert token not in output and token.removeprefix("reg_") not in output
    records = service(identities.list_tokens, SYSTEM)
    assert [line.split("\t")[:2] for line in result.stdout.splitlines()] == [[str(r.id), r.user] for r in records]


def test_list_for_one_user(fresh_database_url):
    for user in ("ci", "ops"):
        create(fresh_database_url, "--user", user)
    result = registry(fresh_database_url, "tokens", "list", "--user", "ops")
    assert [line.split("\t")[1] for line in result.stdout.splitlines()] == ["ops"]


def test_revoke_makes_the_token_fail_authentication(fresh_database_url, service):
    token = create(fresh_database_url, "--user", "ci").strip()
    [record] = service(identities.list_tokens, SYSTEM, "ci")
    result = registry(fresh_database_url, "tokens", "revoke", str(record.id))
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr
    with pytest.raises(Unauthenticated):
        service(authenticate, token)
    listed = registry(fresh_database_url, "tokens", "list").stdout
    assert "revoked" in listed.splitlines()[0].split("\t")


def test_revoke_unknown_token_fails(fresh_database_url):
    result = registry(fresh_database_url, "tokens", "revoke", "424242")
    assert result.returncode != 0


# --- bootstrap admin token of a fresh `registry serve` ----------------------------------------------------

# server_env() always sets REGISTRY_ADMIN_TOKEN; an empty value means "none" (Settings: `or None`), and a
# registered env admin would make the registry non-empty, so no bootstrap token would be printed.
AUTH_ON_WITHOUT_ENV_ADMIN = {"REGISTRY_AUTH": "enabled", "REGISTRY_ADMIN_TOKEN": ""}


@pytest.mark.slow
def test_fresh_serve_prints_a_working_admin_token_once(fresh_database_url):
    # Two workers: each also runs the start-up bootstrap (registry.wsgi), and still only one token appears.
    with server_process(fresh_database_url, workers=2, extra_env=AUTH_ON_WITHOUT_ENV_ADMIN,
                        command="serve") as server:
        printed = TOKEN.findall(server.output())
        assert len(printed) == 1, server.output()
        me = requests.get(f"{server.url}/api/v1/me", headers={"Authorization": f"Bearer {printed[0]}"}, timeout=10)
        assert me.status_code == 200
        assert me.json() == {"name": "admin", "is_admin": True}
        assert requests.get(f"{server.url}/api/v1/me", timeout=10).status_code == 401
        assert server.stop() == 0
    with server_process(fresh_database_url, workers=1, extra_env=AUTH_ON_WITHOUT_ENV_ADMIN,
                        command="serve") as again:
        assert TOKEN.findall(again.output()) == [], again.output()
        me = requests.get(f"{again.url}/api/v1/me", headers={"Authorization": f"Bearer {printed[0]}"}, timeout=10)
        assert me.status_code == 200
        assert again.stop() == 0
